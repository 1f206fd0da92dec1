// Validates rendered Kubernetes manifests offline, as `kubectl apply
// --validate=strict` would against a server:
//   - against the Kubernetes OpenAPI schemas (npm kubernetes-models: types,
//     required fields, enums, formats), and
//   - strictly: every field must exist in the object's type (the OpenAPI
//     models of npm @kubernetes/client-node), so a misspelt or misplaced
//     field fails instead of being dropped by the API server.
//
//   node check_manifests.mjs FILE.yaml...   (multi-document YAML)
// Prints one line per problem and exits 1 if there is any.
import fs from "node:fs";
import { loadAll } from "js-yaml";
import * as models from "@kubernetes/client-node/dist/gen/models/all.js";

// apiVersion/kind -> kubernetes-models module and client-node type name.
function typeNames(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const v = version[0].toUpperCase() + version.slice(1);
  const modelPath = group === "" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  const prefix = group === "" ? `${v}` : `${v}`;
  return { modelPath, typeName: `${prefix}${kind}` };
}

const primitive = {
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  Date: (v) => typeof v === "string" || v instanceof Date,
  V1MicroTime: (v) => typeof v === "string",
  IntOrString: (v) => typeof v === "string" || Number.isInteger(v),
  any: () => true,
  object: (v) => typeof v === "object",
};

function strict(type, value, path, problems) {
  if (value === null || value === undefined) return;
  if (primitive[type]) {
    if (!primitive[type](value)) problems.push(`${path}: ${JSON.stringify(value)} is not a ${type}`);
    return;
  }
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (!Array.isArray(value)) return problems.push(`${path}: not a list`);
    value.forEach((item, i) => strict(m[1], item, `${path}[${i}]`, problems));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${path}: not a map`);
    for (const [k, v] of Object.entries(value)) strict(m[1], v, `${path}.${k}`, problems);
    return;
  }
  const model = models[type];
  if (!model || !model.attributeTypeMap) return problems.push(`${path}: unknown type ${type}`);
  if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${path}: not an object`);
  const fields = new Map(model.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) {
      problems.push(`${path}.${k}: unknown field (${type} has ${[...fields.keys()].join(", ")})`);
      continue;
    }
    strict(fields.get(k), v, `${path}.${k}`, problems);
  }
}

const problems = [];
let count = 0;
for (const file of process.argv.slice(2)) {
  const docs = loadAll(fs.readFileSync(file, "utf8")).filter((d) => d);
  for (const doc of docs) {
    count++;
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    if (!doc.apiVersion || !doc.kind) {
      problems.push(`${where}: no apiVersion or kind`);
      continue;
    }
    const { modelPath, typeName } = typeNames(doc.apiVersion, doc.kind);
    let Model;
    try {
      Model = (await import(modelPath))[doc.kind];
    } catch (e) {
      Model = undefined;
    }
    if (!Model) {
      problems.push(`${where}: ${doc.apiVersion} ${doc.kind} is not a Kubernetes type`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
    strict(typeName, doc, `${where}`, problems);
  }
}
for (const p of problems) console.log(p);
console.log(`${count} objects, ${problems.length} problems`);
process.exit(problems.length === 0 && count > 0 ? 0 : 1);
