#!/usr/bin/env node
// Import every beatspec JSON Schema (schemas/v1/*.json) UNCHANGED into ajv (draft 2020-12) in
// strict mode, compile each one, then validate a list of instances and print ajv's verdicts.
//
//   node check-schemas.mjs [--schemas DIR] INSTANCES.json
//
// INSTANCES.json: a JSON array of {"id": string, "schema": "<file name>", "instance": <value>}.
// Output (stdout): a JSON array of {"id", "schema", "valid"}, in input order.
// Exit status: 0 on success; 1 if a schema fails to compile or strict mode complains; 2 on a usage
// or input error. Diagnostics go to stderr. Never touches the network.

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";

const here = dirname(fileURLToPath(import.meta.url));

function usage(message) {
  process.stderr.write(`check-schemas: ${message}\nusage: node check-schemas.mjs [--schemas DIR] INSTANCES.json\n`);
  process.exit(2);
}

let schemasDir = resolve(here, "..", "..", "schemas", "v1");
const positional = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--schemas") {
    if (i + 1 >= argv.length) usage("--schemas needs a directory");
    schemasDir = resolve(argv[++i]);
  } else {
    positional.push(argv[i]);
  }
}
if (positional.length !== 1) usage("expected exactly one instances file");

// Strict mode must never be merely logged: anything ajv would warn about fails the run.
class StrictModeComplaint extends Error {}
const logger = {
  log: (...args) => process.stderr.write(`ajv: ${args.join(" ")}\n`),
  warn: (...args) => {
    throw new StrictModeComplaint(`ajv warning: ${args.join(" ")}`);
  },
  error: (...args) => {
    throw new StrictModeComplaint(`ajv error: ${args.join(" ")}`);
  },
};

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true, logger });

const files = readdirSync(schemasDir)
  .filter((name) => name.endsWith(".json"))
  .sort();
if (files.length === 0) {
  process.stderr.write(`check-schemas: no *.json in ${schemasDir}\n`);
  process.exit(1);
}

const byName = new Map();
let failed = false;
for (const name of files) {
  try {
    const schema = JSON.parse(readFileSync(join(schemasDir, name), "utf8"));
    const expectedId = `https://beatspec.dev/schemas/v1/${name}`;
    if (schema.$id !== expectedId) {
      throw new Error(`$id is ${JSON.stringify(schema.$id)}, expected ${JSON.stringify(expectedId)}`);
    }
    ajv.addSchema(schema);
    byName.set(name, schema.$id);
  } catch (err) {
    failed = true;
    process.stderr.write(`check-schemas: cannot add ${name}: ${err.message}\n`);
  }
}

const validators = new Map();
for (const [name, id] of byName) {
  try {
    const validate = ajv.getSchema(id); // compiles (and resolves every $ref) on first use
    if (typeof validate !== "function") throw new Error("ajv returned no validator");
    validators.set(name, validate);
  } catch (err) {
    failed = true;
    process.stderr.write(`check-schemas: cannot compile ${name}: ${err.message}\n`);
  }
}
if (failed) process.exit(1);
process.stderr.write(`check-schemas: ${validators.size} schemas compiled in strict mode\n`);

let cases;
try {
  cases = JSON.parse(readFileSync(positional[0], "utf8"));
} catch (err) {
  usage(`cannot read ${positional[0]}: ${err.message}`);
}
if (!Array.isArray(cases)) usage("the instances file must hold a JSON array");

const verdicts = [];
for (const item of cases) {
  if (item === null || typeof item !== "object" || typeof item.id !== "string" || !("instance" in item)) {
    usage(`malformed instance record: ${JSON.stringify(item)}`);
  }
  const validate = validators.get(item.schema);
  if (validate === undefined) usage(`${item.id}: unknown schema ${JSON.stringify(item.schema)}`);
  verdicts.push({ id: item.id, schema: item.schema, valid: validate(item.instance) === true });
}
process.stdout.write(JSON.stringify(verdicts) + "\n");
