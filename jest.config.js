/** Unit tests run in-process; integration tests share real servers started by globalSetup. */
const swc = ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }];
// @kubernetes/client-node 1.x ships ES modules only; Node 20.19+ can require() them, jest's module
// loader cannot, so jest compiles those packages to CommonJS like our own sources.
const transform = { '^.+\\.ts$': swc, '^.+\\.m?js$': swc };
const esmPackages = ['@kubernetes/client-node', 'openid-client', 'oauth4webapi', 'jose', 'jsonpath-plus', 'rfc4648'];
const transformIgnorePatterns = [`/node_modules/(?!(${esmPackages.join('|')})/)`];
// Server state (etcd's *.snap files look like jest snapshots to jest) and build output.
const modulePathIgnorePatterns = ['<rootDir>/.local/', '<rootDir>/dist/'];
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/core/**/*.test.ts', '<rootDir>/services/**/*.test.ts', '<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
    },
  ],
};
