import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { hashUnit } from '../../src/core/explain/labels';
import {
  BROAD_SOURCES,
  buildBroadCorpus,
  gcideDefinitions,
  gitDocs,
  manPages,
  postgresDocs,
  pythonDocs,
  pythonFaqPairs,
  readBroadCorpus,
  wordnetGlosses,
  wordnetLemmas,
  wordnetSynonyms,
  type CorpusSource,
} from '../../src/train/broadCorpus';

// ---- a miniature of the files Debian's packages install, in their real formats ----

const WN_LICENCE = [
  '  1 This software and database is being provided to you, the LICENSEE, by  ',
  '  2 Princeton University under the following license.  By obtaining, using  ',
  '  3 and/or copying this software and database, you agree that you have  ',
];

const DATA_NOUN = [
  ...WN_LICENCE,
  '00001930 03 n 01 physical_entity 0 007 @ 00001740 n 0000 ~ 00002452 n 0000 ~ 00002684 n 0000 ~ 00007347 n 0000 ~ 00020827 n 0000 ~ 00029677 n 0000 ~ 14580597 n 0000 | an entity that has physical existence  ',
  '02958343 06 n 05 car 0 auto 0 automobile 0 machine 1 motorcar 0 001 @ 03791235 n 0000 | a motor vehicle with four wheels; usually propelled by an internal combustion engine; "he needs a car to get to work"  ',
  '04426788 06 n 02 thread 0 yarn 0 003 @ 03106110 n 0000 + 01359450 v 0102 ~ 03115301 n 0000 | a fine cord of twisted fibers (of cotton or silk or wool or nylon etc.) used in sewing and weaving  ',
  '09409203 17 n 02 ribbon 0 thread 0 001 @ 00002684 n 0000 | any long object resembling a thin line; "a mere ribbon of land"; "from the air the road was a grey thread"  ',
  // the same text again under another offset: de-duplicated by buildBroadCorpus
  '09409999 17 n 02 ribbon 0 thread 0 001 @ 00002684 n 0000 | any long object resembling a thin line; "a mere ribbon of land"; "from the air the road was a grey thread"  ',
  '',
].join('\n');

const DATA_ADJ = [...WN_LICENCE, '00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance; "abounding confidence"; "whiskey galore"  ', ''].join('\n');

const INDEX_NOUN = [
  ...WN_LICENCE,
  'auto n 1 4 @ ~ %p - 1 1 02958343  ',
  'automobile n 1 5 @ ~ %p + - 1 1 02958343  ',
  'car n 5 6 @ ~ #m #p %p - 5 2 02958343 02959942 02960501 02960352 02934451  ',
  'machine n 6 5 @ ~ %p + - 6 4 03699975 10278666 08264759 03700963 08264583 02958343  ',
  'motor_vehicle n 1 2 @ ~ 1 0 02958343  ',
  'motorcar n 1 4 @ ~ %p - 1 1 02958343  ',
  'physical_entity n 1 2 @ ~ 1 0 00001930  ',
  'thread n 4 4 @ ~ #p + 4 1 04426788 09409203 05773548 04154938  ',
  'yarn n 2 4 @ ~ %p + 2 0 07220773 04426788  ',
  '',
].join('\n');

const INDEX_ADJ = [...WN_LICENCE, 'abounding a 1 1 & 1 1 00014358  ', 'galore a 2 1 & 2 0 01552162 00014358  ', ''].join('\n');

const GCIDE = String.raw`

00-database-url
   ftp://ftp.gnu.org/gnu/gcide

00-database-short
   The Collaborative International Dictionary of English v.0.48

Thraw \Thraw\ (thr[add]), n. & v.
   See {Throse}. [Scot.] --Burns.
   [1913 Webster]

Thread \Thread\ (thr[e^]d), n. [OE. threed, [thorn]red, AS.
   [thorn]r[=ae]d; akin to D. draad, G. draht wire, thread, OHG.
   dr[=a]t, Icel. [thorn]r[=a][eth]r a thread, Sw. tr[*a]d, Dan.
   traad, and AS. [thorn]r[=a]wan to twist. See {Throw}, and cf.
   {Third}.]
   1. A very small twist of flax, wool, cotton, silk, or other
      fibrous substance, drawn out to considerable length; a
      compound cord consisting of two or more single yarns
      doubled, or joined together, and twisted; also, one fiber
      of a cord composed of multiple fibers.
      [1913 Webster]

   2. A filament of any substance, as of glass, gold or silver;
      a filamentous part of an object, such as a flower; a
      component fiber of any or of any fibrous substance, as of
      bark.
      [1913 Webster]

   3. The prominent part of the spiral of a screw or nut; the
      rib. See {Screw}, n., 1.
      [1913 Webster]

   4. (Fig.) Something continued in a long course or tenor; a
      recurrent theme or related sequence of events in a larger
      story; as the thread of a story, or of life, or of a
      discourse. --Bp. Burnet.
      [1913 Webster]

   5. Fig.: Composition; quality; fineness. [Obs.]
      [1913 Webster]

            A neat courtier,
            Of a most elegant thread.             --B. Jonson.
      [1913 Webster]

   6. (Computers) A related sequence of instructions or actions
      within a program that runs at least in part independent of
      other actions within the program; -- such threads are
      capable of being executed only in oprating systems
      permittnig multitasking.
      [PJC]

   {Air thread}, the fine white filaments which are seen
      floating in the air in summer, the production of spiders;
      gossamer.

Threadbareness \Thread"bare'ness\, n.
   The state of being worn out and threadbare.
   [1913 Webster]

Threadfin \Thread"fin'\, n. (Zool.)
   Any one of several species of fishes belonging to {Polynemus}
   and allied genera. They have numerous long pectoral
   filaments.
   [1913 Webster]
`;

const PY_LIBRARY = [
  ':mod:`x` --- Miscellaneous operating system interfaces',
  '=======================================================',
  '',
  '.. module:: x',
  '   :synopsis: Miscellaneous operating system interfaces.',
  '',
  '**Source code:** :source:`Lib/x.py`',
  '',
  'This module provides a portable way of using operating system dependent',
  'functionality.  If you just want to read or write a file see :func:`open`, if',
  'you want to manipulate paths, see the :mod:`os.path` module, and if you want to',
  'read all the lines in all the files on the command line see the :mod:`fileinput`',
  'module.',
  '',
  '.. function:: listdir(path=\'.\')',
  '',
  '   Return a list containing the names of the entries in the directory given by',
  '   *path*.  The list is in arbitrary order, and does not include the special',
  '   entries ``\'.\'`` and ``\'..\'`` even if they are present in the directory.',
  '',
].join('\n');

const PY_FAQ_GENERAL = [
  ':tocdepth: 2',
  '',
  '==================',
  'General Python FAQ',
  '==================',
  '',
  '.. only:: html',
  '',
  '   .. contents::',
  '',
  '',
  'General Information',
  '===================',
  '',
  'What is Python?',
  '---------------',
  '',
  'Python is an interpreted, interactive, object-oriented programming language.  It',
  'incorporates modules, exceptions, dynamic typing, very high level dynamic data',
  'types, and classes.',
  '',
  'To find out more, start with :ref:`tutorial-index`.',
  '',
  '',
  'What is the Python Software Foundation?',
  '---------------------------------------',
  '',
  'The Python Software Foundation is an independent non-profit organization that',
  "holds the copyright on Python versions 2.1 and newer.  The PSF's mission is to",
  'advance open source technology related to the Python programming language.',
  '',
  '',
  'Python in the real world',
  '========================',
  '',
  'This section is not a question and its text is not an answer to anything at all.',
  '',
  'How stable is Python?',
  '---------------------',
  '',
  'Very stable.  New, stable releases have been coming out roughly every 6 to 18',
  'months since 1991, and this seems likely to continue.',
  '',
  'Can you show me some code?',
  '--------------------------',
  '',
  '::',
  '',
  '   >>> 1 + 1',
  '   2',
  '',
].join('\n');

const PY_FAQ_PROGRAMMING = [
  '===============',
  'Programming FAQ',
  '===============',
  '',
  'How do I share global variables across modules?',
  '------------------------------------------------',
  '',
  'The canonical way to share information across modules within a single program',
  'is to create a special module (often called config or cfg).  Just import the',
  'config module in all modules of your application; the module then becomes',
  'available as a global name.',
  '',
].join('\n');

const GIT_DOC = [
  'git-x(1)',
  '========',
  ':git-x: 1',
  '',
  'NAME',
  '----',
  'git-x - Record changes to the repository',
  '',
  'DESCRIPTION',
  '-----------',
  'Create a new commit containing the current contents of the index and',
  'the given log message describing the changes. The new commit is a',
  'direct child of HEAD, usually the tip of the current branch, and the',
  'branch is updated to point to it, as described in linkgit:git-checkout[1].',
  '',
].join('\n');

const PG_HTML = [
  '<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8" /><title>5.1. Table Basics</title></head><body>',
  '<div class="navheader"><table width="100%"><tr><th>5.1. Table Basics</th></tr></table></div>',
  '<div class="sect1"><h2 class="title">5.1.&nbsp;Table Basics</h2>',
  '<p>A table in a relational database is much like a table on paper: It consists of rows and columns.',
  'The number and order of the columns is fixed, and each column has a name. The number of rows is variable',
  '&mdash; it reflects how much data is stored at a given moment. SQL does not make any guarantees about',
  'the order of the rows in a table. When a table is read, the rows will appear in an unspecified order.</p>',
  '</div><div class="navfooter">Prev Up Next</div></body></html>',
  '',
].join('\n');

const MAN_PAGE = String.raw`.\" This manpage is Copyright (C) 1992 Drew Eckhardt;
.\" SPDX-License-Identifier: Linux-man-pages-copyleft
.TH x 2 2022-10-30 "Linux man-pages 6.03"
.SH NAME
x \- close a file descriptor
.SH DESCRIPTION
.BR x ()
closes a file descriptor, so that it no longer refers to any file and
may be reused.
Any record locks (see
.BR fcntl (2))
held on the file it was associated with,
and owned by the process, are removed (regardless of the file
descriptor that was used to obtain the lock).
`;

function write(root: string, rel: string, data: string | Buffer): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

function makeTree(root: string, opts: { man?: boolean } = {}): void {
  write(root, 'usr/share/wordnet/data.noun', DATA_NOUN);
  write(root, 'usr/share/wordnet/data.adj', DATA_ADJ);
  write(root, 'usr/share/wordnet/index.noun', INDEX_NOUN);
  write(root, 'usr/share/wordnet/index.adj', INDEX_ADJ);
  write(root, 'usr/share/dictd/gcide.dict.dz', zlib.gzipSync(Buffer.from(GCIDE, 'utf8')));
  const py = 'usr/share/doc/python3.11/html/_sources';
  write(root, `${py}/library/x.rst.txt`, PY_LIBRARY);
  write(root, `${py}/faq/general.rst.txt`, PY_FAQ_GENERAL);
  write(root, `${py}/faq/programming.rst.txt`, PY_FAQ_PROGRAMMING);
  write(root, `${py}/faq/index.rst.txt`, 'Python Frequently Asked Questions\n=================================\n\n.. toctree::\n   general.rst\n');
  write(root, 'usr/share/doc/git/git-x.txt', GIT_DOC);
  write(root, 'usr/share/doc/git/RelNotes/2.38.0.txt', 'Git v2.38 Release Notes\n=======================\n\nUpdates since v2.37 include many small fixes to the documentation and the code.\n');
  write(root, 'usr/share/doc/postgresql-doc-15/html/x.html', PG_HTML);
  write(root, 'usr/share/doc/postgresql-doc-15/html/release-15.html', '<html><body><p>Release notes of version fifteen with a long list of changes and fixes.</p></body></html>');
  if (opts.man !== false) {
    write(root, 'usr/share/man/man2/x.2.gz', zlib.gzipSync(Buffer.from(MAN_PAGE, 'utf8')));
    write(root, 'usr/share/man/man2/y.2.gz', zlib.gzipSync(Buffer.from('.so man2/x.2\n', 'utf8')));
  }
}

const readDir = (dir: string): Record<string, string> => Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
const jsonl = (file: string): unknown[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('train/broadCorpus', function () {
  this.timeout(20000);
  let tmp: string;
  let root: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-broad-'));
    root = path.join(tmp, 'root');
    makeTree(root);
  });

  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('WordNet', () => {
    it('wordnetGlosses: "lemma, lemma: gloss" per synset, ids wn:<pos>:<offset>, licence lines skipped', () => {
      const g = wordnetGlosses(root);
      assert.deepEqual(
        g.map((t) => t.id),
        ['wn:noun:00001930', 'wn:noun:02958343', 'wn:noun:04426788', 'wn:noun:09409203', 'wn:noun:09409999', 'wn:adj:00014358'],
      );
      assert.deepEqual(g[0], { id: 'wn:noun:00001930', text: 'physical entity: an entity that has physical existence' });
      assert.equal(g[1].text, 'car, auto, automobile, machine, motorcar: a motor vehicle with four wheels; usually propelled by an internal combustion engine; "he needs a car to get to work"');
      assert.equal(g[2].text, 'thread, yarn: a fine cord of twisted fibers (of cotton or silk or wool or nylon etc.) used in sewing and weaving');
      // adjective markers such as "(ip)" are dropped
      assert.equal(g[5].text, 'abounding, galore: existing in abundance; "abounding confidence"; "whiskey galore"');
      assert.ok(g.every((t) => !/LICENSEE|Princeton/.test(t.text)));
    });

    it('wordnetLemmas: lemmas with spaces, tag counts and synset ids', () => {
      const l = wordnetLemmas(root);
      assert.deepEqual(
        l.map((x) => x.lemma),
        ['auto', 'automobile', 'car', 'machine', 'motor vehicle', 'motorcar', 'physical entity', 'thread', 'yarn', 'abounding', 'galore'],
      );
      const by = new Map(l.map((x) => [`${x.pos}:${x.lemma}`, x]));
      assert.deepEqual(by.get('noun:car'), { lemma: 'car', pos: 'noun', tagCount: 2, synsets: [2958343, 2959942, 2960501, 2960352, 2934451].map((o) => o * 4) });
      assert.equal(by.get('noun:machine')?.tagCount, 4);
      assert.equal(by.get('noun:machine')?.synsets.length, 6);
      assert.equal(by.get('noun:physical entity')?.tagCount, 0);
      assert.equal(by.get('noun:thread')?.tagCount, 1);
      assert.equal(by.get('noun:yarn')?.tagCount, 0);
      assert.equal(by.get('noun:motor vehicle')?.synsets.length, 1);
      // adjective synset ids are offset·4 + 2: no clash with a noun offset
      assert.deepEqual(by.get('adj:galore')?.synsets, [1552162 * 4 + 2, 14358 * 4 + 2]);
      assert.equal(by.get('adj:abounding')?.tagCount, 1);
    });

    it('wordnetSynonyms: single words sharing one of their first senses', () => {
      const syn = wordnetSynonyms(wordnetLemmas(root));
      assert.deepEqual([...(syn.get('car') ?? [])].sort(), ['auto', 'automobile', 'motorcar']);
      assert.deepEqual([...(syn.get('automobile') ?? [])].sort(), ['auto', 'car', 'motorcar']);
      assert.deepEqual([...(syn.get('thread') ?? [])], ['yarn']);
      assert.deepEqual([...(syn.get('yarn') ?? [])], ['thread']);
      // "machine" has the car sense only as its 6th: beyond the first 2 senses
      assert.equal(syn.has('machine'), false);
      assert.ok(![...syn.values()].some((s) => s.has('machine')));
      // multi-word lemmas are left out
      assert.ok(![...syn.keys()].some((k) => k.includes(' ')));
      assert.ok(![...syn.values()].some((s) => [...s].some((w) => w.includes(' '))));
      // abounding/galore share 00014358, which is galore's 2nd sense
      assert.deepEqual([...(syn.get('galore') ?? [])], ['abounding']);
      // with all senses, machine joins the car group
      assert.ok(wordnetSynonyms(wordnetLemmas(root), 6).get('car')?.has('machine'));
    });
  });

  describe('GCIDE', () => {
    it('gcideDefinitions: "headword: definition" per numbered sense, source tags removed', () => {
      const d = gcideDefinitions(root);
      assert.ok(d.length > 0);
      d.forEach((t, i) => assert.equal(t.id, `gcide:${i}`));
      for (const t of d) {
        assert.ok(/^Thread\w*: /.test(t.text), t.text);
        assert.ok(!/\[1913 Webster\]|\[PJC\]|[{}]|\\/.test(t.text), t.text);
        assert.ok(!t.text.includes('database'), t.text);
      }
      const texts = d.map((t) => t.text);
      assert.ok(
        texts.includes('Thread: A filament of any substance, as of glass, gold or silver; a filamentous part of an object, such as a flower; a component fiber of any or of any fibrous substance, as of bark.'),
        texts.join('\n'),
      );
      assert.ok(texts.includes('Thread: The prominent part of the spiral of a screw or nut; the rib. See Screw, n., 1.'), texts.join('\n'));
      assert.ok(texts.some((t) => t.startsWith('Thread: (Computers) A related sequence of instructions')));
      // a quotation block and a compound ({Air thread}, ...) are not senses
      assert.ok(!texts.some((t) => /courtier|gossamer/.test(t)), texts.join('\n'));
    });

    // Regression (src/train/broadCorpus.ts, gcideDefinitions, fixed): the definition in an entry's first block is only
    // read after a "]" that ends a line (an etymology), and skipped when it starts with "1.". In GCIDE
    // sense 1 always sits in the headword's block, so every entry loses sense 1 ("Thread: A very small
    // twist of flax, ..." is missing), and an unnumbered definition without an etymology is lost too
    // ("Threadbareness \Thread"bare'ness\, n.\n   The state of being worn out and threadbare." gives nothing).
    it('keeps sense 1 and unnumbered definitions that sit in the headword block', () => {
      const texts = gcideDefinitions(root).map((t) => t.text);
      assert.ok(texts.some((t) => t.startsWith('Thread: A very small twist of flax, wool, cotton, silk')), texts.join('\n'));
      assert.ok(texts.includes('Threadbareness: The state of being worn out and threadbare.'), texts.join('\n'));
      assert.ok(texts.some((t) => t.startsWith('Threadfin: Any one of several species of fishes')), texts.join('\n'));
    });

    // Regression (src/train/broadCorpus.ts, gcideDefinitions, clean, fixed): the trailing-citation rule
    // /--[A-Z][\w. ]*$/ runs before whitespace is squashed, so a citation followed by the usual
    // "\n      [1913 Webster]" line is never removed: sense 4 of Thread ends "... discourse. --Bp. Burnet."
    it('drops a trailing citation such as "--Bp. Burnet."', () => {
      const texts = gcideDefinitions(root).map((t) => t.text);
      const s4 = texts.find((t) => t.startsWith('Thread: (Fig.) Something continued'));
      assert.equal(s4, 'Thread: (Fig.) Something continued in a long course or tenor; a recurrent theme or related sequence of events in a larger story; as the thread of a story, or of life, or of a discourse.');
    });
  });

  describe('documentation', () => {
    it('pythonDocs reads the reST sources without markup and excludes faq/', () => {
      const docs = pythonDocs(root);
      assert.ok(docs.length >= 1);
      assert.ok(docs.every((t) => t.id.startsWith('python:library/x#')), docs.map((t) => t.id).join(' '));
      assert.ok(!docs.some((t) => /faq|Software Foundation|share global variables/i.test(t.id + t.text)));
      const all = docs.map((t) => t.text).join(' ');
      assert.ok(all.includes('If you just want to read or write a file see open, if you want to manipulate paths, see the os.path module'), all);
      assert.ok(!/:func:|:mod:|:source:|``|\.\. function::|\.\. module::|\*\*/.test(all), all);
    });

    it('gitDocs, postgresDocs and manPages read their sources and skip release notes and redirects', () => {
      const git = gitDocs(root);
      assert.deepEqual(git.map((t) => t.id), ['git:git-x#0']);
      assert.ok(git[0].text.includes('as described in git-checkout.'), git[0].text);
      assert.ok(!git[0].text.includes('linkgit'));

      const pg = postgresDocs(root);
      assert.deepEqual(pg.map((t) => t.id), ['postgresql:x#0']);
      assert.ok(pg[0].text.startsWith('5.1. Table Basics A table in a relational database'), pg[0].text);
      assert.ok(pg[0].text.includes('variable — it reflects'), pg[0].text);
      assert.ok(!/<|Prev Up Next|Content-Type/.test(pg[0].text), pg[0].text);

      const man = manPages(root);
      assert.deepEqual(man.map((t) => t.id), ['man:man2/x.2#0']);
      assert.ok(man[0].text.startsWith('NAME x - close a file descriptor DESCRIPTION x() closes a file descriptor'), man[0].text);
      assert.ok(man[0].text.includes('(see fcntl(2)) held on the file'), man[0].text);
      assert.ok(!/\.TH|\.BR|\\|Copyright/.test(man[0].text), man[0].text);
    });
  });

  describe('pythonFaqPairs', () => {
    it('each question gets its answer (label 1) and other answers as negatives (label 0)', () => {
      const pairs = pythonFaqPairs(root);
      const queries = [...new Set(pairs.map((p) => p.query))];
      assert.deepEqual(queries, ['What is Python?', 'What is the Python Software Foundation?', 'How stable is Python?', 'How do I share global variables across modules?']);
      const pos = pairs.filter((p) => p.label === 1);
      assert.equal(pos.length, 4);
      assert.deepEqual(
        pos.map((p) => p.query_id),
        ['faq-general-1', 'faq-general-2', 'faq-general-3', 'faq-programming-4'],
      );
      assert.equal(
        pos[0].doc,
        'Python is an interpreted, interactive, object-oriented programming language. It incorporates modules, exceptions, dynamic typing, very high level dynamic data types, and classes. To find out more, start with tutorial-index.',
      );
      assert.ok(pos[3].doc.startsWith('The canonical way to share information across modules'));
      const answer = new Map(pos.map((p) => [p.doc_id, p.doc]));
      for (const q of pos) {
        const mine = pairs.filter((p) => p.query_id === q.query_id);
        // exactly one relevant document, its own answer
        assert.equal(mine.filter((p) => p.label === 1).length, 1);
        assert.equal(mine.find((p) => p.label === 1)?.doc_id, q.query_id);
        const negs = mine.filter((p) => p.label === 0);
        assert.equal(negs.length, 3, 'all other answers (fewer than 4)');
        assert.equal(new Set(negs.map((p) => p.doc_id)).size, 3);
        for (const n of negs) {
          assert.notEqual(n.doc_id, q.query_id);
          assert.equal(n.doc, answer.get(n.doc_id));
          assert.equal(n.query, q.query);
        }
      }
      // not a question, or an answer that is only code: no pair
      assert.ok(!pairs.some((p) => /real world|show me some code/i.test(p.query)));
      assert.ok(!pairs.some((p) => />>>/.test(p.doc)));
    });

    it('negatives: the answers sharing most words with the question, at most `negatives`', () => {
      const pairs = pythonFaqPairs(root, 1);
      assert.equal(pairs.length, 8);
      // "What is the Python Software Foundation?" shares python, software and foundation only with its own
      // answer; of the others, "What is Python?"'s answer names python (as do the others): the first by order wins
      const neg = pairs.filter((p) => p.query_id === 'faq-general-2' && p.label === 0);
      assert.equal(neg.length, 1);
      // "How do I share global variables across modules?": the answer to "What is Python?" mentions modules
      const neg4 = pairs.filter((p) => p.query_id === 'faq-programming-4' && p.label === 0);
      assert.deepEqual(neg4.map((p) => p.doc_id), ['faq-general-1']);
      assert.deepEqual(pythonFaqPairs(path.join(tmp, 'nowhere')), []);
    });
  });

  describe('buildBroadCorpus', () => {
    it('writes <source>.jsonl, python-faq.jsonl and sources.json', () => {
      const out = path.join(tmp, 'out-a');
      const r = buildBroadCorpus(out, { root });
      assert.deepEqual(r.missing, []);
      assert.equal(r.faqPairs, 16);
      assert.deepEqual(
        r.sources.map((s) => s.name),
        BROAD_SOURCES,
      );
      assert.deepEqual(fs.readdirSync(out).sort(), [...BROAD_SOURCES.map((s) => `${s}.jsonl`), 'python-faq.jsonl', 'sources.json'].sort());
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'sources.json'), 'utf8')) as { seed: number; capPerSource: number | null; sources: CorpusSource[]; heldOut: Record<string, number> };
      assert.equal(meta.seed, 13);
      assert.equal(meta.capPerSource, null, "no --cap: each source's own cap");
      assert.deepEqual(meta.heldOut, { 'python-faq': 16 });
      assert.deepEqual(meta.sources, r.sources);
      for (const s of meta.sources) {
        const lines = jsonl(path.join(out, `${s.name}.jsonl`)) as { id: string; text: string }[];
        assert.equal(lines.length, s.count, s.name);
        assert.equal(s.available, s.count, s.name);
        assert.ok(lines.every((l) => typeof l.id === 'string' && typeof l.text === 'string' && Object.keys(l).length === 2));
        assert.ok(s.path.startsWith('/usr/share/'), s.path);
      }
      // the duplicated WordNet synset is written once
      const wn = meta.sources.find((s) => s.name === 'wordnet');
      assert.equal(wn?.count, 5);
      assert.equal(jsonl(path.join(out, 'python-faq.jsonl')).length, 16);
      const back = readBroadCorpus(out);
      assert.deepEqual(back.sources, r.sources);
      assert.deepEqual(back.texts.get('wordnet'), jsonl(path.join(out, 'wordnet.jsonl')));
    });

    it('is deterministic: two runs give identical bytes', () => {
      const a = path.join(tmp, 'det-a');
      const b = path.join(tmp, 'det-b');
      buildBroadCorpus(a, { root });
      buildBroadCorpus(b, { root });
      assert.deepEqual(readDir(a), readDir(b));
      const c = path.join(tmp, 'det-c');
      const d = path.join(tmp, 'det-d');
      buildBroadCorpus(c, { root, capPerSource: 2, seed: 5 });
      buildBroadCorpus(d, { root, capPerSource: 2, seed: 5 });
      assert.deepEqual(readDir(c), readDir(d));
    });

    it('capPerSource caps a source by a seeded hash of the ids and records what was available', () => {
      const out = path.join(tmp, 'capped');
      const full = wordnetGlosses(root).slice(0, 4).concat(wordnetGlosses(root).slice(5)); // without the duplicate
      const r = buildBroadCorpus(out, { root, capPerSource: 2, seed: 13 });
      const wn = r.sources.find((s) => s.name === 'wordnet');
      assert.deepEqual({ available: wn?.available, count: wn?.count }, { available: 5, count: 2 });
      const kept = (jsonl(path.join(out, 'wordnet.jsonl')) as { id: string }[]).map((t) => t.id);
      const expected = full
        .map((t) => ({ id: t.id, h: hashUnit(t.id, 13) }))
        .sort((x, y) => x.h - y.h)
        .slice(0, 2)
        .map((x) => x.id)
        .sort();
      assert.deepEqual(kept, expected);
      // a source under the cap is written whole
      const git = r.sources.find((s) => s.name === 'git-docs');
      assert.deepEqual({ available: git?.available, count: git?.count }, { available: 1, count: 1 });
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'sources.json'), 'utf8'));
      assert.equal(meta.capPerSource, 2);
      // the FAQ eval file is not capped
      assert.equal(r.faqPairs, 16);
    });

    it('a missing package is listed in `missing`, not fatal', () => {
      const partial = path.join(tmp, 'partial');
      makeTree(partial, { man: false });
      const out = path.join(tmp, 'out-partial');
      const r = buildBroadCorpus(out, { root: partial });
      assert.equal(r.missing.length, 1);
      assert.match(r.missing[0], /^man-pages \(Debian package manpages-dev/);
      assert.ok(!fs.existsSync(path.join(out, 'man-pages.jsonl')));
      assert.deepEqual(
        r.sources.map((s) => s.name),
        BROAD_SOURCES.filter((s) => s !== 'man-pages'),
      );

      const empty = path.join(tmp, 'empty');
      fs.mkdirSync(empty);
      const out2 = path.join(tmp, 'out-empty');
      const r2 = buildBroadCorpus(out2, { root: empty });
      assert.deepEqual(r2.sources, []);
      assert.equal(r2.faqPairs, 0);
      assert.deepEqual(
        r2.missing.map((m) => m.split(' ')[0]),
        [...BROAD_SOURCES, 'python-faq'],
      );
      assert.deepEqual(fs.readdirSync(out2), ['sources.json']);
      assert.deepEqual(readBroadCorpus(out2).sources, []);
    });
  });
});
