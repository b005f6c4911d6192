import type { HttpRequest, HttpResponseInit } from '@azure/functions';

import { ValidationError } from '../domain/errors';
import type { ReportDimension, UsageReport, UsageReportRow } from '../domain/usage-report';
import { buildUsageReport, REPORT_DIMENSIONS } from '../domain/usage-report';
import type { Services } from '../services';
import { assertAdmin } from './caller';

/**
 * GET /usage (admin): totals per day, caller and model over a range of days, as JSON or as CSV for a
 * spreadsheet or Power BI (`format=csv` or `Accept: text/csv`).
 */
export function createUsageReportHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    assertAdmin(request, services.config);
    const format = formatOf(request);
    const report = await buildUsageReport(
      {
        from: request.query.get('from') ?? undefined,
        to: request.query.get('to') ?? undefined,
        caller: request.query.get('caller') ?? undefined,
        groupBy: groupByOf(request.query.get('groupBy')),
      },
      { usageStore: services.usageStore, now: services.clock.now(), currency: services.config.usage.prices.currency },
    );
    const headers = { 'cache-control': 'no-store' };
    if (format === 'csv') {
      return {
        status: 200,
        headers: {
          ...headers,
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': `attachment; filename="usage-${report.from}-${report.to}.csv"`,
        },
        body: toCsv(report),
      };
    }
    return { status: 200, headers, jsonBody: report };
  };
}

function formatOf(request: HttpRequest): 'json' | 'csv' {
  const asked = request.query.get('format');
  if (asked !== null) {
    if (asked !== 'json' && asked !== 'csv') throw new ValidationError("format must be 'json' or 'csv'.", { code: 'InvalidParameter', target: 'format' });
    return asked;
  }
  return /\btext\/csv\b/i.test(request.headers.get('accept') ?? '') ? 'csv' : 'json';
}

function groupByOf(value: string | null): ReportDimension[] {
  if (value === null) return [...REPORT_DIMENSIONS];
  const names = value.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(REPORT_DIMENSIONS as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new ValidationError(`groupBy takes a comma-separated list of ${REPORT_DIMENSIONS.join(', ')}.`, { code: 'InvalidParameter', target: 'groupBy' });
  }
  return REPORT_DIMENSIONS.filter((name) => names.includes(name));
}

const MEASURES = ['calls', 'failedCalls', 'images', 'textInputTokens', 'imageInputTokens', 'imageOutputTokens', 'textOutputTokens', 'cost'] as const;

/**
 * RFC 4180 CSV: CRLF line ends, fields with a comma, quote or line break quoted, quotes doubled. Caller
 * names come from callers, so a text field a spreadsheet would read as a formula gets a leading `'`.
 */
export function toCsv(report: UsageReport): string {
  const dimensions = report.groupBy;
  const header = [...dimensions, ...MEASURES, 'currency'];
  const lines = [header, ...report.rows.map((row) => [...dimensions.map((dimension) => text(row[dimension])), ...MEASURES.map((measure) => number(row, measure)), report.currency])];
  return lines.map((fields) => fields.map(quote).join(',')).join('\r\n') + '\r\n';
}

const text = (value: string | undefined) => {
  const field = value ?? '';
  return /^[=+\-@\t\r]/.test(field) ? `'${field}` : field;
};

const number = (row: UsageReportRow, measure: (typeof MEASURES)[number]) => (measure === 'cost' ? row.cost.toFixed(6) : String(row[measure]));

const quote = (field: string) => (/[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field);
