import type { UsageReport } from '../../src/domain/usage-report';
import { toCsv } from '../../src/http/usage-handler';

const zero = { calls: 1, failedCalls: 0, images: 1, textInputTokens: 0, imageInputTokens: 0, imageOutputTokens: 272, textOutputTokens: 0, cost: 0.008704 };

describe('toCsv', () => {
  it('quotes what needs quoting, ends lines with CRLF and defuses text a spreadsheet would run as a formula', () => {
    const report: UsageReport = {
      from: '2026-11-01',
      to: '2026-11-30',
      groupBy: ['caller'],
      currency: 'USD',
      pricesAsOf: ['2026-11-05'],
      totals: zero,
      rows: [
        { caller: '=cmd|"/c calc"!A1', ...zero },
        { caller: 'Smith, "J"\nline two', ...zero },
        { caller: 'plain', ...zero },
      ],
    };

    expect(toCsv(report).split('\r\n')).toEqual([
      'caller,calls,failedCalls,images,textInputTokens,imageInputTokens,imageOutputTokens,textOutputTokens,cost,currency',
      `"'=cmd|""/c calc""!A1",1,0,1,0,0,272,0,0.008704,USD`,
      '"Smith, ""J""\nline two",1,0,1,0,0,272,0,0.008704,USD',
      'plain,1,0,1,0,0,272,0,0.008704,USD',
      '',
    ]);
  });
});
