// ctest Api.OpenApiDocumentPassesSwaggerParser: the OpenAPI document a real `dagrun schedule`
// serves (/api/v1/openapi.json, generated from the route table) validated by swagger-parser, at the
// version package-lock.json pins: against the OpenAPI 3.0 schema, plus its own checks (unique
// operationIds, declared path parameters, resolvable $refs).
//   node validate.mjs --dagrun PATH --scratch DIR   a daemon's document
//   node validate.mjs --file PATH                   a document on disk (to see a broken one fail)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
let SwaggerParser;
try {
  ({ default: SwaggerParser } = await import(new URL('./node_modules/@apidevtools/swagger-parser/lib/index.js', import.meta.url)));
} catch (e) {
  console.error('swagger-parser is missing: run scripts/npm-deps.sh (scripts/install-deps.sh runs it)\n' + e);
  process.exit(1);
}

// The document a daemon serves, asked without credentials (the API's description is open, as
// Airflow's is) while the daemon has a token.
async function served(dagrun, scratch) {
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(path.join(scratch, 'dags'), { recursive: true });
  fs.writeFileSync(path.join(scratch, 'dags', 'hello.yaml'),
    'dag_id: hello\ntasks:\n  - task_id: greet\n    operator: bash\n    bash_command: echo hi\n');
  const logFile = path.join(scratch, 'daemon.log');
  const daemon = spawn(dagrun, ['schedule', '--dags', path.join(scratch, 'dags'), '--db', 'sqlite:' + path.join(scratch, 'dagrun.db'),
    '--logs', path.join(scratch, 'logs'), '--listen', '127.0.0.1:0'],
  { env: { ...process.env, DAGRUN_API_TOKEN: 'openapi-t0ken' }, stdio: ['ignore', fs.openSync(logFile, 'w'), fs.openSync(logFile, 'a')] });
  try {
    // The daemon logs its port once it listens: wait for that line, 20 s at most.
    const end = Date.now() + 20000;
    let port;
    while (!port) {
      if (daemon.exitCode !== null) throw new Error('the daemon exited:\n' + fs.readFileSync(logFile, 'utf8'));
      if (Date.now() > end) throw new Error('the daemon did not start listening:\n' + fs.readFileSync(logFile, 'utf8'));
      port = (fs.readFileSync(logFile, 'utf8').match(/serving HTTP on 127\.0\.0\.1:(\d+)/) || [])[1];
      if (!port) await new Promise((r) => setTimeout(r, 100));
    }
    const answer = await fetch(`http://127.0.0.1:${port}/api/v1/openapi.json`);
    if (answer.status !== 200) throw new Error(`GET /api/v1/openapi.json: ${answer.status} ${await answer.text()}`);
    return await answer.json();
  } finally {
    daemon.kill('SIGTERM');
  }
}

try {
  const document = args.file ? JSON.parse(fs.readFileSync(args.file, 'utf8')) : await served(args.dagrun, path.resolve(args.scratch || 'openapi-check'));
  const operations = Object.values(document.paths || {}).reduce((n, ops) => n + Object.keys(ops).length, 0);
  // validate() dereferences the document it is given: give it a copy.
  await SwaggerParser.validate(structuredClone(document));
  console.log(`swagger-parser: the OpenAPI ${document.openapi} document is valid (${operations} operations)`);
} catch (e) {
  console.error('FAIL: ' + (e.message || e));
  process.exit(1);
}
