/** Label selectors: parsing, matching and canonical formatting, as a table of good and bad cases. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalSelector, formatSelector, matches, parseSelector } from '../src/protocol/selector.ts';

const web = { role: 'web', region: 'us', tier: 'a' };
const db = { role: 'db', region: 'eu' };
const bare = {};

/** [selector, canonical form, matches web, matches db, matches bare] */
const GOOD: [string, string, boolean, boolean, boolean][] = [
  ['', '', true, true, true],
  ['role=web', 'role=web', true, false, false],
  ['role==web', 'role=web', true, false, false],
  ['  role = web ', 'role=web', true, false, false],
  ['region!=eu', 'region!=eu', true, false, true],
  ['tier in (a,b)', 'tier in (a,b)', true, false, false],
  ['tier in ( b , a , a )', 'tier in (a,b)', true, false, false],
  ['tier notin (c)', 'tier notin (c)', true, true, true],
  ['tier notin (a)', 'tier notin (a)', false, true, true],
  ['tier', 'tier', true, false, false],
  ['!tier', '!tier', false, true, true],
  ['role=web,region!=eu', 'region!=eu,role=web', true, false, false],
  ['region!=eu,role=web', 'region!=eu,role=web', true, false, false],
  ['role in (web,db),!tier', '!tier,role in (db,web)', false, true, false],
  ['role=', 'role=', false, false, false],
  ['example.com/team=ops-1', 'example.com/team=ops-1', false, false, false],
];

/** [selector, expected message fragment] */
const BAD: [string, RegExp][] = [
  [',', /expected a label key at the start, found "," at position 1$/],
  ['role=web,', /expected a label key after ",", found the end at position 10$/],
  ['role=web,,a', /expected a label key after ",", found "," at position 10$/],
  ['role=web region=eu', /expected "=", "==", "!=", "in", "notin", "," or the end after key "region"|expected "," or the end, found "region" at position 10$/],
  ['role=web!', /expected "," or the end, found "!" at position 9$/],
  ['tier in a', /expected "\(" after "in", found "a" at position 9$/],
  ['tier in (a', /expected "," or "\)" in the value list, found the end at position 11$/],
  ['tier in ()', /expected a label value after "\(", found "\)" at position 10$/],
  ['tier notin (a,)', /expected a label value after ",", found "\)" at position 15$/],
  ['!', /expected a label key after "!", found the end at position 2$/],
  ['!role=web', /expected "," or the end, found "=" at position 6$/],
  ['role>3', /unexpected character ">" at position 5$/],
  ['role=we$b', /unexpected character "\$" at position 8$/],
  ['-role=web', /label key "-role" is not valid/],
  ['role=web-', /label value "web-" is not valid/],
  ['role=web/x', /label value "web\/x" is not valid/],
  [`k=${'v'.repeat(64)}`, /label value "v{64}" is not valid/],
  ['role web', /after key "role", found "web" at position 6$/],
];

describe('selectors', () => {
  for (const [text, canonical, onWeb, onDb, onBare] of GOOD) {
    it(`parses ${JSON.stringify(text)}`, () => {
      const selector = parseSelector(text);
      assert.equal(formatSelector(selector), canonical);
      assert.equal(canonicalSelector(canonical), canonical, 'the canonical form parses to itself');
      assert.deepEqual([matches(selector, web), matches(selector, db), matches(selector, bare)], [onWeb, onDb, onBare]);
    });
  }

  for (const [text, message] of BAD) {
    it(`refuses ${JSON.stringify(text)} with a one-line message`, () => {
      assert.throws(() => parseSelector(text), (error: Error) => {
        assert.match(error.message, message);
        assert.ok(error.message.startsWith(`invalid selector ${JSON.stringify(text)}: `), error.message);
        assert.ok(!error.message.includes('\n'));
        return true;
      });
    });
  }

  it('matches an empty label value only with an explicit empty value', () => {
    assert.equal(matches(parseSelector('role='), { role: '' }), true);
    assert.equal(matches(parseSelector('role'), { role: '' }), true);
    assert.equal(matches(parseSelector('role=web'), { role: '' }), false);
  });
});
