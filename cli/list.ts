import type { ContainerClient } from '@azure/storage-blob';
import { z } from 'zod';

import type { ConnectedStack } from './stack';
import { readJsonBlob } from './stack';

const jobSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  createdAt: z.string(),
  request: z.looseObject({ operation: z.string(), result: z.looseObject({ store: z.string(), prefix: z.string() }).optional() }),
  error: z.looseObject({ code: z.string() }).optional(),
});

const usageSchema = z.looseObject({ total_tokens: z.number().optional() }).optional();

const requestRecordSchema = z.looseObject({
  operation: z.string(),
  response: z.looseObject({ usage: usageSchema }).optional(),
  images: z.array(z.unknown()),
});

const manifestSchema = z.looseObject({
  status: z.string(),
  usage: usageSchema,
  images: z.array(z.unknown()).optional(),
  error: z.looseObject({ code: z.string() }).optional(),
});

/** The newest jobs, and the newest results of API calls (images) and of inbox uploads (outputs). */
export async function listRecent(connected: ConnectedStack, limit: number): Promise<string[]> {
  const jobs = connected.container('jobs');
  const images = connected.container('images');
  const outputs = connected.container('outputs');
  const [jobBlobs, requestBlobs, manifestBlobs] = await Promise.all([
    newest(jobs, (name) => name.startsWith('jobs/') && name.endsWith('.json'), limit),
    newest(images, (name) => name.endsWith('/request.json'), limit),
    newest(outputs, (name) => name.endsWith('/manifest.json'), limit),
  ]);

  const lines = [`jobs (${jobs.containerName}), newest first:`];
  for (const blob of jobBlobs) {
    const job = jobSchema.parse(await readJson(jobs, blob.name));
    const result = job.request.result ? `  → ${job.request.result.store === 'outputs' ? outputs.containerName : images.containerName}/${job.request.result.prefix}/` : '';
    lines.push(`  ${blob.lastModified.toISOString()}  ${job.status.padEnd(9)}  ${job.request.operation.padEnd(8)}  ${job.id}${job.error ? `  ${job.error.code}` : ''}${result}`);
  }
  if (jobBlobs.length === 0) lines.push('  (none yet: async requests, Idempotency-Key requests and inbox uploads make jobs)');

  const results: { time: Date; line: string }[] = [];
  for (const blob of requestBlobs) {
    const record = requestRecordSchema.parse(await readJson(images, blob.name));
    const where = `${images.containerName}/${blob.name.slice(0, -'request.json'.length)}`;
    results.push({ time: blob.lastModified, line: `${where}  ${record.operation}, ${plural(record.images.length, 'image')}${tokens(record.response?.usage)}` });
  }
  for (const blob of manifestBlobs) {
    const manifest = manifestSchema.parse(await readJson(outputs, blob.name));
    const where = `${outputs.containerName}/${blob.name.slice(0, -'manifest.json'.length)}`;
    const detail = manifest.status === 'succeeded' ? `, ${plural(manifest.images?.length ?? 0, 'image')}${tokens(manifest.usage)}` : manifest.error ? ` (${manifest.error.code})` : '';
    results.push({ time: blob.lastModified, line: `${where}  inbox edit ${manifest.status}${detail}` });
  }
  results.sort((a, b) => b.time.getTime() - a.time.getTime());
  lines.push(`results (${images.containerName}: API calls, ${outputs.containerName}: inbox uploads), newest first:`);
  for (const { time, line } of results.slice(0, limit)) lines.push(`  ${time.toISOString()}  ${line}`);
  if (results.length === 0) lines.push('  (none yet)');
  return lines;
}

async function newest(container: ContainerClient, wanted: (name: string) => boolean, limit: number): Promise<{ name: string; lastModified: Date }[]> {
  const found: { name: string; lastModified: Date }[] = [];
  for await (const blob of container.listBlobsFlat()) if (wanted(blob.name)) found.push({ name: blob.name, lastModified: blob.properties.lastModified });
  return found.sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime()).slice(0, limit);
}

const readJson = (container: ContainerClient, name: string): Promise<unknown> => readJsonBlob(container.getBlobClient(name));

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

function tokens(usage: z.infer<typeof usageSchema>): string {
  return usage?.total_tokens === undefined ? '' : `, ${usage.total_tokens} tokens`;
}
