/** Unit tests run in-process; integration tests share real servers started by globalSetup. */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/core/**/*.test.ts', '<rootDir>/services/**/*.test.ts', '<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // The operator suites need the kube-apiserver in global setup and ESM loading of
      // @kubernetes/client-node under jest; both land with the operator issue (#3).
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/integration/operator.test.ts', '<rootDir>/test/integration/leader-election.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
    },
  ],
};
