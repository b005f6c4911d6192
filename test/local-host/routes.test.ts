import { compareRanks, compileRoute } from '../../local-host/routes';

describe('compileRoute', () => {
  it.each([
    ['images/generations', '/images/generations', {}],
    ['images/generations', '/Images/Generations/', {}],
    ['jobs/{id}', '/jobs/abc%20def', { id: 'abc def' }],
    ['jobs/{id}/{part?}', '/jobs/1', { id: '1' }],
    ['jobs/{id}/{part?}', '/jobs/1/result', { id: '1', part: 'result' }],
    ['files/{*rest}', '/files/a/b/c.png', { rest: 'a/b/c.png' }],
    ['files/{name}.{ext}', '/files/cat.png', { name: 'cat', ext: 'png' }],
    ['items/{n:int}', '/items/-12', { n: '-12' }],
    ['', '/', {}],
  ])('matches %s against %s', (template, path, params) => {
    expect(compileRoute(template).match(path)).toEqual(params);
  });

  it.each([
    ['images/generations', '/images'],
    ['images/generations', '/images/generations/extra'],
    ['jobs/{id}', '/jobs'],
    ['jobs/{id}', '/jobs/1/2'],
    ['items/{n:int}', '/items/x'],
  ])('does not match %s against %s', (template, path) => {
    expect(compileRoute(template).match(path)).toBeUndefined();
  });

  it('refuses an optional parameter before the last segment', () => {
    expect(() => compileRoute('jobs/{id?}/result')).toThrow(/only the last parameter/);
  });

  it('ranks literal segments before constrained, plain, optional and catch-all captures', () => {
    const templates = ['items/{*rest}', 'items/{id?}', 'items/{id}', 'items/{id:int}', 'items/special'];

    const ordered = templates.map(compileRoute).sort((a, b) => compareRanks(a.rank, b.rank)).map((route) => route.template);

    expect(ordered).toEqual(['items/special', 'items/{id:int}', 'items/{id}', 'items/{id?}', 'items/{*rest}']);
  });
});
