// Nexus's OpenAPI document as a Postman collection (v2.1): node collection.mjs URL OUTPUT.
// Reads the document a running API serves, points the collection's {{baseUrl}} at that API
// (the document names no server), one folder per tag, and bearer auth as {{bearerToken}}.
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import converter from "openapi-to-postmanv2";

const [url, output] = process.argv.slice(2);
if (!url || !output) {
  console.error("usage: node collection.mjs http://127.0.0.1:8000/openapi.json nexus.postman_collection.json");
  process.exit(2);
}

let response;
try {
  response = await fetch(url);
} catch (error) {
  console.error(`cannot read ${url} (${error.cause?.code ?? error.message}): start the API first (make run)`);
  process.exit(1);
}
if (!response.ok) {
  console.error(`${url} answered ${response.status}`);
  process.exit(1);
}
const document = await response.json();
document.servers ??= [{ url: new URL(url).origin }];

const result = await promisify(converter.convert)(
  { type: "json", data: document },
  { folderStrategy: "Tags", requestParametersResolution: "Example", exampleParametersResolution: "Example" },
);
if (!result.result) {
  console.error(`conversion failed: ${result.reason}`);
  process.exit(1);
}
const collection = result.output[0].data;
collection.variable ??= [];
if (!collection.variable.some((v) => v.key === "bearerToken")) {
  collection.variable.push({ key: "bearerToken", value: "", type: "string" }); // an access token from POST /api/token/
}
await writeFile(output, JSON.stringify(collection, null, 2) + "\n");
const requests = (items) => items.reduce((n, item) => n + (item.item ? requests(item.item) : 1), 0);
console.log(`${output}: ${requests(collection.item)} requests in ${collection.item.length} folders, base URL ${document.servers[0].url}`);
