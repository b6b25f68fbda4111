// The layout shows the pipeline: scripts/lib/<concern>/, and dependencies
// point one way, from the CLI down to the core. Every import (static or
// dynamic, types too) of a folder may name its own folder or one below it,
// and there is no import cycle at all.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import ts from 'typescript';

const lib = new URL('../../scripts/lib/', import.meta.url).pathname;
/** From the bottom up. A folder may import its own and those before it. */
export const LAYERS = ['core', 'host', 'image', 'guest', 'vm', 'build', 'verdict', 'debug', 'suite', 'loop', 'cli'];

const files = (readdirSync(lib, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort();
const importsOf = (f: string): string[] =>
  [...readFileSync(path.join(lib, f), 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+\.ts)'/g)].map((m) =>
    path.normalize(path.join(path.dirname(f), m[1])),
  );

t.test('every file of scripts/lib is in a concern folder', async (t) => {
  for (const f of files) t.ok(LAYERS.includes(f.split('/')[0]) && f.includes('/'), `${f} is in one of ${LAYERS.join(', ')}`);
});

t.test('dependencies point down the pipeline: cli → loop → suite → verdict → build → vm → guest → image → host → core', async (t) => {
  const up: string[] = [];
  for (const f of files) {
    for (const imp of importsOf(f)) {
      if (imp.startsWith('..')) {
        up.push(`${f} imports ${imp}, outside scripts/lib`);
        continue;
      }
      const [from, to] = [f.split('/')[0], imp.split('/')[0]];
      if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) up.push(`${f} (${from}) imports ${imp} (${to})`);
    }
  }
  t.same(up, [], 'no import points up');
});

t.test('no import cycles', async (t) => {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const g of graph.get(f) ?? []) visit(g, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  t.same(cycles, [], 'no cycle');
});

t.test('no file is much over 300 lines', async (t) => {
  for (const f of files) {
    const n = readFileSync(path.join(lib, f), 'utf8').split('\n').length;
    t.ok(n <= 320, `${f}: ${n} lines`);
  }
});

t.test('no function is much over 60 lines (parsed with the TypeScript compiler, entry scripts included)', async (t) => {
  const scripts = new URL('../../scripts/', import.meta.url).pathname;
  const all = (readdirSync(scripts, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const long: string[] = [];
  for (const f of all) {
    const sf = ts.createSourceFile(f, readFileSync(path.join(scripts, f), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n)) {
        const lines = sf.getLineAndCharacterOfPosition(n.getEnd()).line - sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
        // "About 60": the signature and the closing brace count, so 65 at most.
        if (lines > 65) long.push(`${f}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}: ${lines} lines`);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  t.same(long, [], 'split these into functions of one step each');
});

t.test('every package the tool imports is a runtime dependency (an installed kmodvm has no devDependencies)', async (t) => {
  const scripts = new URL('../../scripts/', import.meta.url).pathname;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  const sources = [
    // validate-github.ts is the repository's own check of its workflow files (npm run validate:github), not part of the tool.
    ...(readdirSync(scripts, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && f !== 'validate-github.ts').map((f) => path.join(scripts, f)),
    new URL('../../bin/kmodvm.js', import.meta.url).pathname,
  ];
  const missing = new Set<string>();
  for (const f of sources) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^import\s+(?!type\b)[^'"]*['"]([^./][^'"]*)['"]/gm)) {
      if (m[1].startsWith('node:')) continue;
      const name = m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0];
      if (!pkg.dependencies[name]) missing.add(`${name} (${path.relative(scripts, f)})`);
    }
  }
  t.same([...missing], [], 'imported by the tool, listed in dependencies');
});

t.test('entry scripts are a few lines and import only cli, loop and core; no module of scripts/lib runs on import', async (t) => {
  const scripts = new URL('../../scripts/', import.meta.url).pathname;
  const entries = readdirSync(scripts).filter((f) => f.endsWith('.ts'));
  t.ok(entries.includes('kmodvm.ts'), 'the one CLI entry');
  for (const f of entries) {
    const text = readFileSync(path.join(scripts, f), 'utf8');
    const code = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('//'));
    t.ok(code.length <= 25, `${f}: ${code.length} lines of code`);
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const layer = m[1].match(/^\.\/lib\/([^/]+)\//)?.[1];
      t.ok(layer && ['cli', 'loop', 'core'].includes(layer), `${f} imports ${m[1]}`);
    }
  }
  const running: string[] = [];
  for (const f of files) {
    const sf = ts.createSourceFile(f, readFileSync(path.join(lib, f), 'utf8'), ts.ScriptTarget.Latest, true);
    for (const st of sf.statements) {
      // A top-level statement that does something: a call or an await outside any declaration.
      if (ts.isExpressionStatement(st) && (ts.isAwaitExpression(st.expression) || ts.isCallExpression(st.expression)))
        running.push(`${f}: ${st.getText().slice(0, 60)}`);
    }
  }
  t.same(running, [], 'a module of scripts/lib only declares; the entry script runs it');
});

t.test('no two files of scripts/ share a name (hostbuild and host-build, two judges, two fail-nths were confusing)', async (t) => {
  const scripts = new URL('../../scripts/', import.meta.url).pathname;
  // A command's module is named by its verb (cli/commands/ssh.ts is `kmodvm ssh`): the folder says what it is.
  const all = (readdirSync(scripts, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('lib/cli/commands/'));
  const key = (f: string): string => path.basename(f, '.ts').replace(/-/g, '');
  const seen = new Map<string, string>();
  const twins: string[] = [];
  for (const f of all) {
    if (seen.has(key(f))) twins.push(`${seen.get(key(f))} and ${f}`);
    seen.set(key(f), f);
  }
  t.same(twins, [], 'each file name once');
});

t.test('at most 10 functions take the whole options (Config) or the whole RunPlan; the rest take the fields they read (#23)', async (t) => {
  const whole = /^(Readonly<)?(Config|RunPlan)>?$/;
  const takers: string[] = [];
  for (const f of files) {
    const sf = ts.createSourceFile(f, readFileSync(path.join(lib, f), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isFunctionLike(n) && n.parameters.some((p) => p.type && whole.test(p.type.getText())))
        takers.push(`${f}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`);
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  t.ok(takers.length <= 10, `${takers.length}: ${takers.join(', ')}`);
  t.ok(
    takers.every((x) => /^(loop|core\/config\.ts)/.test(x)),
    'only the composition (loop/) and the options themselves (core/config.ts)',
  );
});
