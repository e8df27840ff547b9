// ESLint: typescript-eslint's strict, type-checked rules, with the few that do not fit this code
// turned off below, each with its reason. Formatting is Prettier's (.prettierrc.json), not ESLint's.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.local/', 'coverage/', 'charts/', 'test/support/*.js'] },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    rules: {
      // Numbers and booleans in SQL, log and error text are the point of those templates.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // noUncheckedIndexedAccess is on: `!` marks an index whose bounds the surrounding loop proves,
      // on hot paths where a check per element would cost more than it tells.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `() => void promise` and `(x) => set.add(x)` shorthands read better than braces.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Values that cross a boundary (JSON bodies, Kafka records, API objects, environment) are typed
      // as the contract says but checked as they arrive: this rule would delete those checks.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // @kubernetes/client-node's model classes are plain data in practice: its own examples build
      // them as object literals and spread them.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-misused-spread': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests and benchmarks read ad-hoc query rows and JSON bodies, whose shape the assertion checks.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/require-await': 'off',
      // Generators widen literals with `as` (an arbitrary's outcome union); the rule's fix narrows them back.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        module: 'readonly',
        require: 'readonly',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        AbortSignal: 'readonly',
      },
    },
  },
);
