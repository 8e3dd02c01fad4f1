// Checks Kubernetes manifests offline against Kubernetes' own API schema, as published in
// OpenAPI and compiled by the npm package kubernetes-models:
//   node validate.mjs FILE.yaml...
// Each YAML document becomes the model of its apiVersion and kind, whose validate() checks
// types, enums and required fields. The schema allows unknown fields (the API server prunes or
// refuses them), so a misspelt field would pass: every key is also checked against the model's
// declared properties (read from the package's type declarations), recursively.
// Prints one line per problem and exits 1 if there is any; 0 and "ok" lines otherwise.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const modelsRoot = path.dirname(require.resolve("kubernetes-models/package.json"));

/** The directory of a group/version's models: "batch/v1" -> batch/v1, "v1" -> v1. */
function modelDir(apiVersion) {
  return path.join(modelsRoot, ...apiVersion.split("/"));
}

/** Declared properties of the interface in a .d.ts file: name -> { type, file }. */
const declarations = new Map();
function properties(dtsFile) {
  if (declarations.has(dtsFile)) return declarations.get(dtsFile);
  const text = readFileSync(dtsFile, "utf8");
  const imports = new Map();
  for (const [, name, from] of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) {
    imports.set(name, from);
  }
  const body = text.match(/export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)\n\}/);
  const props = new Map();
  if (body) {
    for (const [, name, type] of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) {
      const inner = type.match(/^(?:Array<)?(I\w+)>?$/);
      let file = null;
      if (inner && imports.has(inner[1])) {
        const from = imports.get(inner[1]);
        file = from.startsWith(".")
          ? path.resolve(path.dirname(dtsFile), from + ".d.ts")
          : path.join(path.dirname(modelsRoot), from + ".d.ts");
      }
      props.set(name, { type, file, array: type.startsWith("Array<") });
    }
    // TypeMeta: apiVersion and kind.
    if (/extends TypeMeta/.test(text)) {
      props.set("apiVersion", { type: "string", file: null });
      props.set("kind", { type: "string", file: null });
    }
  }
  declarations.set(dtsFile, props);
  return props;
}

/** Unknown keys of `value` (and of its nested objects) against the model in `dtsFile`. */
function unknownFields(value, dtsFile, where, problems) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const props = properties(dtsFile);
  for (const [key, child] of Object.entries(value)) {
    const prop = props.get(key);
    if (!prop) {
      problems.push(`${where}: unknown field "${key}" (not in ${path.basename(dtsFile, ".d.ts")})`);
      continue;
    }
    if (!prop.file) continue;
    const items = prop.array && Array.isArray(child) ? child : [child];
    items.forEach((item, i) =>
      unknownFields(item, prop.file, prop.array ? `${where}.${key}[${i}]` : `${where}.${key}`, problems),
    );
  }
}

async function check(file, index, doc, problems) {
  const where = `${file}#${index + 1}`;
  const { apiVersion, kind } = doc ?? {};
  if (!apiVersion || !kind) {
    problems.push(`${where}: no apiVersion or kind`);
    return;
  }
  let Model;
  try {
    Model = (await import(path.join(modelDir(apiVersion), kind + ".mjs")))[kind];
  } catch {
    problems.push(`${where}: ${apiVersion} ${kind} is not a Kubernetes kind kubernetes-models knows`);
    return;
  }
  try {
    new Model(doc).validate();
  } catch (error) {
    problems.push(`${where} (${kind} ${doc.metadata?.name ?? "?"}): ${error.message}`);
  }
  unknownFields(doc, path.join(modelDir(apiVersion), kind + ".d.ts"), `${where} ${kind}`, problems);
}

const problems = [];
for (const file of process.argv.slice(2)) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [index, document] of documents.entries()) {
    if (document.errors.length) {
      problems.push(`${file}#${index + 1}: not YAML: ${document.errors[0].message}`);
      continue;
    }
    const doc = document.toJS();
    if (doc === null) continue;
    const before = problems.length;
    await check(file, index, doc, problems);
    if (problems.length === before) console.log(`ok ${file}#${index + 1} ${doc.kind} ${doc.metadata?.name ?? ""}`);
  }
}
for (const problem of problems) console.error(problem);
process.exit(problems.length ? 1 : 0);
