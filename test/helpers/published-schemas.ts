import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { packageRoot } from '../../src/config/package-paths.js';

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as AddFormats;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const compiled = new Map<string, ValidateFunction>();

/**
 * Checks a payload against a file in schemas/ with a general JSON Schema validator, as a
 * central server in another language would, rather than against the zod schema it came from.
 */
export function assertMatchesPublishedSchema(file: string, payload: unknown): void {
  let validate = compiled.get(file);
  if (!validate) {
    validate = ajv.compile(JSON.parse(readFileSync(join(packageRoot(), 'schemas', file), 'utf8')) as object);
    compiled.set(file, validate);
  }
  if (!validate(payload)) throw new Error(`payload does not match schemas/${file}: ${ajv.errorsText(validate.errors)}`);
}
