/**
 * HTTP target: raw HTTP/1.1 requests over TLS (so that header bytes are the fuzzer's, not a
 * client library's) to the device API (telemetry with `iothub-app-*` properties, cloud-to-device
 * receive/complete/abandon, file upload) and the service APIs (registry, twins, direct methods,
 * query), with odd ids, api-versions, credentials, headers and bodies; a third of them mutated at
 * byte level. A 5xx other than 503/504 is a finding: bad input is the client's error (4xx).
 */
import fc from 'fast-check';
import type { FuzzHub } from './hub.js';
import type { FuzzProperty, FuzzTarget } from './harness.js';
import { exchange } from './net.js';
import { applyMutations, mutationsArb } from './mutate.js';
import { oddBody, oddNumberString, oddString } from './odd.js';

const PORT = 443;
const API = 'api-version=2021-04-12';

const percentEncode = (s: string) => [...Buffer.from(s)].map((b) => '%' + b.toString(16).padStart(2, '0')).join('');
/** A header value with the bytes HTTP forbids there taken out (those get 400 from the parser before any of our code). */
const headerSafe = (s: string) => s.replace(/[\r\n\0]/g, '');

function arbitraries(hub: FuzzHub) {
  const id = hub.devices.fuzz.id;
  const idArb = fc.oneof(
    { arbitrary: fc.constant(id), weight: 5 },
    { arbitrary: fc.constant(hub.devices.controlMqtt.id), weight: 1 },
    { arbitrary: oddString.map(percentEncode), weight: 2 },
    { arbitrary: oddString.map((s) => s.replace(/[\s/?#]/g, '_')), weight: 1 },
    // Encodings of encodings, encoded separators, dots.
    { arbitrary: fc.constantFrom(`${id}%2Fx`, `${id}%252F`, '%2e%2e', '..', '.', `${encodeURIComponent(id)}%00`, '%F0%9F%98%80', '%C0%AF', `${id}%3F$x=1`, 'a%23b', `${id}%20`), weight: 1 },
  );
  const jobId = fc.oneof(fc.constantFrom('job-1', 'fuzz-job'), oddString.map(percentEncode));
  const apiVersion = fc.oneof({ arbitrary: fc.constant(API), weight: 6 }, { arbitrary: fc.constant(''), weight: 1 }, { arbitrary: oddString.map((s) => `api-version=${percentEncode(s)}`), weight: 1 });
  const query = fc.tuple(apiVersion, fc.option(oddString.map(percentEncode))).map(([a, x]) => [a, x].filter(Boolean).join('&'));
  const path = fc.oneof(
    fc.tuple(idArb, query).map(([d, q]) => `/devices/${d}/messages/events?${q}`),
    fc.tuple(idArb, oddString, query).map(([d, m, q]) => `/devices/${d}/modules/${percentEncode(m)}/messages/events?${q}`),
    fc.tuple(idArb, fc.constantFrom('devicebound', 'deviceBound'), query).map(([d, b, q]) => `/devices/${d}/messages/${b}?${q}`),
    fc.tuple(idArb, oddString, fc.constantFrom('', '/abandon', '?reject'), query).map(([d, e, s, q]) => `/devices/${d}/messages/deviceBound/${percentEncode(e)}${s}${s.includes('?') ? '&' : '?'}${q}`),
    fc.tuple(idArb, fc.constantFrom('/files', '/files/notifications', '/files/notifications/x'), query).map(([d, f, q]) => `/devices/${d}${f}?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/devices/${d}?${q}`),
    fc.tuple(idArb, oddString, query).map(([d, m, q]) => `/devices/${d}/modules/${percentEncode(m)}?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/twins/${d}?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/twins/${d}/methods?${q}`),
    fc.tuple(idArb, oddString, query).map(([d, m, q]) => `/twins/${d}/modules/${percentEncode(m)}/methods?${q}`),
    query.map((q) => `/devices/query?${q}`),
    query.map((q) => `/devices?${q}`),
    query.map((q) => `/statistics/devices?${q}`),
    query.map((q) => `/statistics/service?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/devices/${d}/modules?${q}`),
    fc.tuple(idArb, oddString, query).map(([d, m, q]) => `/twins/${d}/modules/${percentEncode(m)}?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/devices/${d}/twin?${q}`),
    fc.tuple(idArb, query).map(([d, q]) => `/devices/${d}/applyConfigurationContent?${q}`),
    fc.tuple(idArb, oddString, query).map(([d, c, q]) => `/devices/${d}/files/notifications/${percentEncode(c)}?${q}`),
    fc.tuple(jobId, fc.constantFrom('', '/cancel'), query).map(([j, x, q]) => `/jobs/v2/${j}${x}?${q}`),
    fc.tuple(fc.constantFrom('', 'type=scheduleUpdateTwin&', 'jobStatus=running&', 'type=%00&'), query).map(([t, q]) => `/jobs/v2/query?${t}${q}`),
    fc.tuple(jobId, query).map(([j, q]) => `/jobs/${j}?${q}`),
    query.map((q) => `/jobs/create?${q}`),
    query.map((q) => `/jobs?${q}`),
    fc.tuple(fc.oneof(fc.constant('fuzz-config'), oddString.map(percentEncode)), query).map(([c, q]) => `/configurations/${c}?${q}`),
    fc.tuple(fc.constantFrom('', 'top=1&', 'top=-1&', 'top=abc&'), query).map(([t, q]) => `/configurations?${t}${q}`),
    oddString.map((s) => '/' + percentEncode(s)),
  );
  const method = fc.oneof({ arbitrary: fc.constantFrom('GET', 'PUT', 'POST', 'PATCH', 'DELETE'), weight: 8 }, { arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'TRACE', 'FOO'), weight: 1 });
  const authorization = fc.oneof(
    { arbitrary: fc.constant(hub.serviceToken), weight: 4 },
    { arbitrary: fc.constant(hub.deviceToken(id)), weight: 3 },
    { arbitrary: fc.tuple(oddString, oddString, oddNumberString, oddString).map(([sr, sig, se, skn]) => `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${skn}`), weight: 1 },
    { arbitrary: oddString, weight: 1 },
  );
  const body = fc.oneof(
    { arbitrary: oddBody, weight: 3 },
    { arbitrary: fc.record({ deviceId: fc.oneof(fc.constant(id), oddString), etag: fc.option(oddString), status: fc.option(fc.oneof(fc.constantFrom('enabled', 'disabled'), oddString)), authentication: fc.option(fc.jsonValue()), capabilities: fc.option(fc.jsonValue()) }).map((o) => JSON.stringify(o)), weight: 2 },
    { arbitrary: fc.record({ properties: fc.record({ desired: fc.jsonValue({ maxDepth: 6 }) }), tags: fc.option(fc.jsonValue({ maxDepth: 3 })) }).map((o) => JSON.stringify(o)), weight: 2 },
    { arbitrary: fc.record({ methodName: fc.oneof(fc.constant('reboot'), oddString), payload: fc.jsonValue({ maxDepth: 3 }), responseTimeoutInSeconds: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.jsonValue()), connectTimeoutInSeconds: fc.oneof(fc.integer({ min: -5, max: 2 }), fc.jsonValue()) }).map((o) => JSON.stringify(o)), weight: 2 },
    { arbitrary: fc.record({ query: fc.oneof(fc.constantFrom('SELECT * FROM devices', 'SELECT * FROM devices WHERE properties.reported.x > 1', 'SELECT COUNT() FROM devices GROUP BY status'), oddString) }).map((o) => JSON.stringify(o)), weight: 1 },
    { arbitrary: fc.record({ blobName: oddString, correlationId: oddString, isSuccess: fc.jsonValue(), statusCode: fc.jsonValue() }).map((o) => JSON.stringify(o)), weight: 1 },
    // Jobs (device method and twin update jobs, import/export).
    {
      arbitrary: fc
        .record(
          {
            jobId: fc.oneof(fc.constant('fuzz-job'), oddString),
            type: fc.oneof(fc.constantFrom('scheduleDeviceMethod', 'scheduleUpdateTwin', 'export', 'import'), oddString),
            queryCondition: fc.oneof(fc.constantFrom("deviceId = 'fuzz'", '*', "deviceId IN ['a','b']", 'properties.reported.x > '), oddString),
            startTime: fc.oneof(fc.constantFrom('2026-01-01T00:00:00Z', 'yesterday', ''), fc.jsonValue()),
            maxExecutionTimeInSeconds: fc.oneof(fc.integer({ min: -5, max: 1e6 }), fc.jsonValue()),
            cloudToDeviceMethod: fc.record({ methodName: oddString, payload: fc.jsonValue({ maxDepth: 2 }), responseTimeoutInSeconds: fc.jsonValue() }, { requiredKeys: [] }),
            updateTwin: fc.oneof(fc.record({ etag: fc.constantFrom('*', '"x"'), tags: fc.jsonValue({ maxDepth: 3 }), properties: fc.record({ desired: fc.jsonValue({ maxDepth: 4 }) }) }, { requiredKeys: [] }), fc.jsonValue()),
            outputBlobContainerUri: oddString,
            inputBlobContainerUri: oddString,
            excludeKeysInExport: fc.jsonValue(),
            storageAuthenticationType: fc.oneof(fc.constantFrom('keyBased', 'identityBased'), oddString),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      weight: 2,
    },
    // Configurations and applyConfigurationContent.
    {
      arbitrary: fc
        .record(
          {
            id: fc.oneof(fc.constant('fuzz-config'), oddString),
            etag: fc.option(oddString),
            priority: fc.oneof(fc.integer({ min: -10, max: 10 }), fc.jsonValue()),
            targetCondition: fc.oneof(fc.constantFrom('*', "tags.env='prod'", "deviceId='fuzz'", ''), oddString),
            labels: fc.oneof(fc.dictionary(oddString, oddString, { maxKeys: 3 }), fc.jsonValue()),
            content: fc.oneof(
              fc.record({ deviceContent: fc.dictionary(fc.constantFrom('properties.desired.a', 'properties.desired', 'tags.x', 'properties.reported.a'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 2 }) }, { requiredKeys: [] }),
              fc.record({ modulesContent: fc.dictionary(fc.constantFrom('$edgeAgent', '$edgeHub', 'm'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 2 }) }, { requiredKeys: [] }),
              fc.jsonValue(),
            ),
            metrics: fc.oneof(fc.record({ queries: fc.dictionary(oddString, fc.oneof(fc.constant('SELECT deviceId FROM devices'), oddString), { maxKeys: 2 }) }), fc.jsonValue()),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      weight: 2,
    },
    // Bulk registry operations.
    {
      arbitrary: fc
        .array(fc.record({ id: fc.oneof(fc.constant(id), oddString), importMode: fc.oneof(fc.constantFrom('create', 'update', 'updateIfMatchETag', 'delete', 'deleteIfMatchETag', 'updateTwin'), oddString), eTag: fc.option(oddString), status: fc.option(oddString), authentication: fc.option(fc.jsonValue()) }, { requiredKeys: ['id'] }), { maxLength: 5 })
        .map((o) => JSON.stringify(o)),
      weight: 1,
    },
  );
  const headers = fc.record(
    {
      authorization,
      'content-type': fc.oneof(
        fc.constantFrom(
          'application/json', 'application/json; charset=utf-8', 'application/octet-stream', 'text/plain', 'application/merge-patch+json', 'application/json; charset=latin1',
          'application/json; charset=utf-16', 'application/json;', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/vnd.microsoft.iothub.json',
          'application/json, text/plain', 'APPLICATION/JSON', '*/*', 'application/', ';', 'application/json; charset="utf-8"',
        ),
        oddString,
      ),
      'if-match': fc.oneof(
        fc.constantFrom('*', '"*"', '"x"', 'W/"1"', 'W/', '"', '""', '"AAAAAAAAAAE="', 'AAAAAAAAAAE=', '"1", "2"', '*, "x"', 'W/"', '"\\""', '"%00"', `"${'A'.repeat(5000)}"`),
        oddString,
      ),
      'if-none-match': fc.constantFrom('*', '"x"'),
      accept: fc.oneof(fc.constantFrom('application/json', '*/*', 'text/html', 'application/xml'), oddString),
      'content-encoding': fc.constantFrom('gzip', 'deflate', 'identity', 'br', 'x'),
      // Huge header values (Node refuses a header section over 16 KiB with 431 before any of our code).
      'x-ms-huge': fc.oneof({ arbitrary: fc.constant('h'), weight: 6 }, { arbitrary: fc.integer({ min: 1000, max: 40_000 }).map((n) => 'h'.repeat(n)), weight: 1 }),
      'iothub-app-huge': fc.oneof({ arbitrary: fc.constant('p'), weight: 4 }, { arbitrary: fc.integer({ min: 100, max: 16_000 }).map((n) => 'p'.repeat(n)), weight: 1 }),
      'iothub-messageid': oddString,
      'iothub-correlationid': oddString,
      'iothub-contenttype': oddString,
      'iothub-contentencoding': oddString,
      'iothub-to': oddString,
      'x-ms-max-item-count': oddNumberString,
      'x-ms-continuation': oddString,
    },
    { requiredKeys: [] },
  );
  const appProperties = fc.dictionary(oddString.map((s) => `iothub-app-${s.replace(/[^!#$%&'*+.^_`|~0-9A-Za-z-]/g, '')}`), oddString, { maxKeys: 4 });
  const request = fc.record({
    method,
    path,
    headers,
    appProperties,
    body: fc.option(body, { freq: 4 }),
    contentLength: fc.oneof({ arbitrary: fc.constant('exact' as const), weight: 8 }, { arbitrary: fc.constantFrom('none', 'short', 'chunked') as fc.Arbitrary<'none' | 'short' | 'chunked'>, weight: 1 }),
    mutations: fc.option(mutationsArb, { freq: 3 }),
  });
  return { request };
}

type Request = ReturnType<typeof arbitraries>['request'] extends fc.Arbitrary<infer T> ? T : never;

function encodeRequest(host: string, r: Request): Buffer {
  const body = r.body === null ? Buffer.alloc(0) : Buffer.from(r.body);
  const lines = [`${r.method} ${r.path} HTTP/1.1`, `host: ${host}`, 'connection: close'];
  for (const [k, v] of Object.entries({ ...r.headers, ...r.appProperties })) if (v !== undefined) lines.push(`${k}: ${headerSafe(String(v))}`);
  let payload = body;
  if (r.contentLength === 'exact') lines.push(`content-length: ${body.length}`);
  else if (r.contentLength === 'short') lines.push(`content-length: ${Math.max(0, body.length - 3)}`);
  else if (r.contentLength === 'chunked') {
    lines.push('transfer-encoding: chunked');
    payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  }
  const bytes = Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), payload]);
  return r.mutations ? applyMutations(bytes, r.mutations) : bytes;
}

export const httpTarget: FuzzTarget = {
  name: 'http',
  ports: [PORT],
  async properties(hub): Promise<FuzzProperty[]> {
    const { request } = arbitraries(hub);
    return [
      {
        name: 'requests',
        arbitrary: fc.array(request, { minLength: 1, maxLength: 4 }),
        async run(requests: Request[]) {
          const answers = await Promise.all(
            requests.map(async (r) => {
              const { response } = await exchange([encodeRequest(hub.host, r)], { host: hub.host, port: PORT, tls: true, idleMs: 400, maxMs: 4000 });
              const status = /^HTTP\/1\.[01] (\d{3})/.exec(response.toString('latin1', 0, 20))?.[1];
              if (status && Number(status) >= 500 && status !== '503' && status !== '504') {
                const text = response.toString('utf8');
                return `${r.method} ${r.path.slice(0, 200)} answered ${status}: ${text.slice(text.indexOf('\r\n\r\n') + 4, text.indexOf('\r\n\r\n') + 300)}`;
              }
              return undefined;
            }),
          );
          return answers.find((a) => a !== undefined);
        },
      },
    ];
  },
};
