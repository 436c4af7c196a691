import { createHash } from 'node:crypto';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { InstallError } from './install-error.js';

export interface DownloadRequest {
  url: string;
  /** The exact size the command declared. */
  bytes: number;
  sha256: string;
}

export interface DownloadLimits {
  timeoutMs: number;
  /** Largest bundle accepted at all (update.maxBundleBytes), whatever the command declares. */
  maxBytes: number;
  /** PEM CA certificates for https (update.caFile); absent, the system's. */
  ca?: Buffer;
}

/**
 * Fetches a packed bundle: one GET, no redirects (the command names the file it means),
 * the whole transfer within the timeout, and never more than the declared size read: a
 * server that sends more is cut off at the first byte too many. The size and sha256 are
 * checked here; whether it is a trusted bundle is the signature's business, later.
 */
export async function downloadBundle(request: DownloadRequest, limits: DownloadLimits): Promise<Buffer> {
  if (request.bytes > limits.maxBytes) {
    throw new InstallError('too_large', `the bundle at ${request.url} is declared as ${request.bytes} bytes, over update.maxBundleBytes (${limits.maxBytes})`);
  }
  const url = new URL(request.url);
  const get = url.protocol === 'https:' ? httpsGet : httpGet;
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const body = await new Promise<Buffer>((resolve, reject) => {
    const fail = (error: InstallError) => {
      request_.destroy();
      reject(error);
    };
    const request_ = get(url, { signal, ...(url.protocol === 'https:' && limits.ca ? { ca: limits.ca } : {}) }, (response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        response.resume();
        const hint = status >= 300 && status < 400 ? ' (redirects are not followed: give the final URL)' : '';
        return fail(new InstallError('download_failed', `GET ${loggable(url)} answered HTTP ${status}${hint}`));
      }
      const declared = Number(response.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared !== request.bytes) {
        return fail(new InstallError('size_mismatch', `${loggable(url)} serves ${declared} bytes (Content-Length), the command says ${request.bytes}`));
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > request.bytes) return fail(new InstallError('size_mismatch', `${loggable(url)} sent more than the ${request.bytes} bytes the command declared; stopped reading`));
        chunks.push(chunk);
      });
      response.on('end', () => {
        if (received !== request.bytes) return fail(new InstallError('size_mismatch', `${loggable(url)} sent ${received} bytes, the command declared ${request.bytes}`));
        resolve(Buffer.concat(chunks, received));
      });
      response.on('error', (error) => reject(transferError(error, url, limits.timeoutMs, signal)));
    });
    request_.on('error', (error) => reject(transferError(error, url, limits.timeoutMs, signal)));
  });
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== request.sha256) throw new InstallError('sha256_mismatch', `${loggable(url)} has sha256 ${digest}, the command says ${request.sha256}: the file on the server is not the one packed`);
  return body;
}

function transferError(error: Error, url: URL, timeoutMs: number, signal: AbortSignal): InstallError {
  if (error instanceof InstallError) return error;
  if (signal.aborted) return new InstallError('download_timeout', `${loggable(url)} did not arrive within ${Math.round(timeoutMs / 1000)} s (update.downloadTimeoutSeconds)`);
  return new InstallError('download_failed', `GET ${loggable(url)} failed: ${error.message}`);
}

/** The URL without user info or query (which may carry a token), fit for replies and logs. */
function loggable(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
