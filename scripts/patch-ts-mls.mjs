/**
 * ts-mls 1.6.4 (pinned, CONTRACT.md section 10) validates a received ratchet tree more
 * strictly than RFC 9420 §7.9.2 allows: for a leaf unmerged at a parent node it demands that
 * every non-blank node on the leaf's whole direct path carry the *same* unmerged list, where
 * the RFC asks only that the nodes *between* the leaf and that parent *list the leaf*. Trees
 * that honest add-only commits make in different subtrees (two members adding people at
 * once, say) break the stricter rule, and then nobody can join the group again, neither by
 * welcome nor by external commit. This rewrites that one check to the RFC's rule; it runs
 * after every install (package.json "postinstall") and is idempotent. The SDK bundle and the
 * Worker are both built from the patched file.
 */
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = join(root, "node_modules", "ts-mls", "dist", "src", "clientState.js");
const STRICT = `                for (const parentIdx of dp) {
                    const dpNode = tree[parentIdx];
                    if (dpNode !== undefined) {
                        if (dpNode.nodeType !== "parent")
                            return new InternalError("Expected parent node");
                        if (!arraysEqual(dpNode.parent.unmergedLeaves, n.parent.unmergedLeaves))
                            return new ValidationError("non-blank intermediate node must list leaf node in its unmerged_leaves");
                    }
                }`;
const RFC = `                for (const parentIdx of dp) {
                    // edge-chat patch (scripts/patch-ts-mls.mjs): RFC 9420 §7.9.2, only the nodes between.
                    if (parentIdx === toNodeIndex(i))
                        break;
                    const dpNode = tree[parentIdx];
                    if (dpNode !== undefined) {
                        if (dpNode.nodeType !== "parent")
                            return new InternalError("Expected parent node");
                        if (!dpNode.parent.unmergedLeaves.includes(unmergedLeaf))
                            return new ValidationError("non-blank intermediate node must list leaf node in its unmerged_leaves");
                    }
                }`;

if (!existsSync(file)) {
  console.log("patch-ts-mls: ts-mls not installed, nothing to patch");
} else {
  const text = readFileSync(file, "utf8");
  if (text.includes("edge-chat patch (scripts/patch-ts-mls.mjs)")) {
    // already patched
  } else if (!text.includes(STRICT)) {
    console.error("patch-ts-mls: the expected check was not found in ts-mls/dist/src/clientState.js (not 1.6.4?)");
    process.exit(1);
  } else {
    writeFileSync(file, text.replace(STRICT, RFC));
    console.log("patch-ts-mls: ratchet tree validation now follows RFC 9420 §7.9.2");
  }
}
