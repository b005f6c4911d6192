import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.azurite/**', 'coverage/**', '*.js', '*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // azd hook scripts: plain Node ESM outside the TypeScript project, linted without type information.
    files: ['infra/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Build scripts: plain Node ESM outside the TypeScript project, linted without type information.
    files: ['scripts/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // CommonJS preloads for child processes (node --require): plain Node outside the TypeScript project.
    files: ['**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'commonjs' },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The core decides; it must not know which SDK or transport carries its calls.
    files: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['@azure/*', 'undici', '../adapters/*', '../http/*', '../functions/*'] },
      ],
    },
  },
  {
    // The app never depends on its dev tools.
    files: ['src/**/*.ts'],
    ignores: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/emulator/**', '**/local-host/**', '**/cli/**', '**/bench/**'] }],
    },
  },
);
