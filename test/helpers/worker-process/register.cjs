// Lets a plain `node` child process run the TypeScript sources, as jest does in-process: each .ts file
// is compiled by @swc/core (already there for @swc/jest) when it is required, and the `./x.js` names
// the sources use for lazily loaded modules resolve to `./x.ts` when nothing is compiled.
'use strict';
const Module = require('node:module');
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    sourceMaps: 'inline',
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function resolveTypeScriptSource(request, ...rest) {
  try {
    return resolveFilename.call(this, request, ...rest);
  } catch (error) {
    if (/^\.{1,2}\/.*\.js$/.test(request)) return resolveFilename.call(this, request.replace(/\.js$/, '.ts'), ...rest);
    throw error;
  }
};
