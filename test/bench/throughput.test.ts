import { imagesPerWindow } from '../../bench/throughput';

const times = (count: number, at: number): number[] => Array.from({ length: count }, () => at);

describe('the throughput bench’s images per window', () => {
  it('gives a perfect scheduler exactly the quota sum, whatever the number of images', () => {
    // 15 per window of 6 s: a full quota at 0, 6, 12 s, and the last 10 at 18 s.
    const perfect = [...times(15, 0), ...times(15, 6_000), ...times(15, 12_000), ...times(10, 18_000)];

    expect(imagesPerWindow(perfect, 15, 6_000)).toBe(15);
  });

  it('gives less to a schedule that reuses each window late', () => {
    const late = [...times(5, 0), ...times(5, 7_500), ...times(5, 15_000)];

    expect(imagesPerWindow(late, 5, 6_000)).toBeCloseTo(4);
  });

  it('has nothing to say when everything fitted into the first window', () => {
    expect(imagesPerWindow([0, 10, 20], 5, 6_000)).toBeUndefined();
  });
});
