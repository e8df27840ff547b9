import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { loadKubeConfig } from '../core/kube-config';

export interface KubeClients {
  config: KubeConfig;
  custom: CustomObjectsApi;
  apps: AppsV1Api;
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  objects: KubernetesObjectApi;
}

export function kubeClients(config: KubeConfig = loadKubeConfig()): KubeClients {
  return {
    config,
    custom: config.makeApiClient(CustomObjectsApi),
    apps: config.makeApiClient(AppsV1Api),
    core: config.makeApiClient(CoreV1Api),
    coordination: config.makeApiClient(CoordinationV1Api),
    objects: KubernetesObjectApi.makeApiClient(config),
  };
}

export const statusOf = (error: unknown): number | undefined =>
  error instanceof ApiException ? error.code : undefined;
export const isNotFound = (error: unknown): boolean => statusOf(error) === 404;
export const isConflict = (error: unknown): boolean => statusOf(error) === 409;
