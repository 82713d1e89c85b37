import { describe, expect, it } from 'vitest';
import { sourceList } from './sources';

describe('sources from the server', () => {
  it('numbers them 1..k whatever n they carried', () => {
    const list = sourceList([
      { n: 1, url: 'https://a.example/', title: 'A' },
      { n: 1, url: 'https://b.example/', title: 'B' },
      { url: 'https://c.example/' },
    ]);
    expect(list.map((s) => s.n)).toEqual([1, 2, 3]);
    expect(list[2]).toEqual({ n: 3, url: 'https://c.example/', title: '' });
  });

  it('keeps distinct numbers, which citations refer to', () => {
    const list = sourceList([{ n: 2, url: 'https://a.example/', title: 'A' }, { n: 5, url: 'https://b.example/', title: 'B' }]);
    expect(list.map((s) => s.n)).toEqual([2, 5]);
  });

  it('drops what is not a source and survives what is not a list', () => {
    expect(sourceList(null)).toEqual([]);
    expect(sourceList({ n: 1, url: 'https://a.example/' })).toEqual([]);
    expect(sourceList(['x', 3, null, { url: 42, title: { t: 1 } }])).toEqual([{ n: 1, url: '', title: '' }]);
  });
});
