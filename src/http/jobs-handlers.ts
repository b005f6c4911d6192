import type { HttpRequest, HttpResponseInit } from '@azure/functions';

import { cancelJob, readJobWithToken } from '../domain/image-jobs';
import type { Services } from '../services';
import { jobDependencies, jobResponse, jobStatusBody } from './jobs';

// The job routes are reached through the links a job was created with (Location, statusUrl), which
// carry the job's own access token; Power Automate follows them without the function key.
const tokenOf = (request: HttpRequest) => request.query.get('token') ?? undefined;
const idOf = (request: HttpRequest) => request.params['id'] ?? '';

/** GET /jobs/{id}: 202 while pending, then exactly the synchronous answer (fresh links), or its error. */
export function createGetJobHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const token = tokenOf(request);
    const job = await readJobWithToken(idOf(request), token, jobDependencies(services));
    return jobResponse(job.value, token ?? '', services);
  };
}

/** GET /jobs/{id}/status: always 200 with the job's state, for Do-until loops. */
export function createJobStatusHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const token = tokenOf(request);
    const job = await readJobWithToken(idOf(request), token, jobDependencies(services));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: await jobStatusBody(job.value, token ?? '', services) };
  };
}

/** DELETE /jobs/{id}: cancels a job that has not started. */
export function createCancelJobHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const services = await getServices();
    const token = tokenOf(request);
    const job = await cancelJob(idOf(request), token, jobDependencies(services));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: await jobStatusBody(job, token ?? '', services) };
  };
}
