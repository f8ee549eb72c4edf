// Dataset checks on the work queue (issue 15). POST /v1/datasets/{id}/complete claims the dataset
// (`validating`, with the staged version in `check_state`) and enqueues one message; each message
// advances the check by one bounded step and asks for another until the last step decides:
// `ready` (the checked version promoted to the dataset's key) or `invalid` with the errors.
// Resumable formats keep their cursor in R2 (dataset_check_state.ts) and, for sets larger than one
// step, write the checked bytes to the dataset's key as multipart parts on the way (completed only
// when the check passes, aborted otherwise); gzip and image archives run
// in one invocation and restart from byte 0 after a crash. Every CPU loop yields to the event loop
// so the isolate keeps answering requests meanwhile.
import { and, eq } from "drizzle-orm";
import { datasets } from "../../../db/schema";
import type { DatasetIssue } from "../dataset_check";
import {
  CHECK_CHUNK_BYTES,
  type CheckCursor,
  type CheckProgress,
  checkStateKey,
  checkStep,
  loadCursor,
  resumable,
  type StepUpload,
  saveCursor,
  uploadsInSteps,
} from "../dataset_check_state";
import { checkDataset, ObjectChanged, type ObjectVersion, promoteObject, stagingKey } from "../datasets";
import type { WorkDeps, WorkHandler, WorkMessage } from "./work";

type DatasetRow = typeof datasets.$inferSelect;

/** The message a dataset whose upload changed mid-check shows (it goes back to `uploading`). */
export const replacedMessage = (id: string) =>
  `The upload of dataset ${id} was replaced while it was being checked; call /complete again to check the new bytes.`;

async function load(deps: WorkDeps, msg: WorkMessage): Promise<DatasetRow | undefined> {
  return deps.db.query.datasets.findFirst({
    where: and(eq(datasets.id, msg.id), eq(datasets.tenantId, msg.tenantId)),
  });
}

/** Writes the row only while it is still being checked: a deleted or finished dataset is left alone. */
const whileValidating = (id: string) => and(eq(datasets.id, id), eq(datasets.status, "validating"));

async function setProgress(deps: WorkDeps, d: DatasetRow, p: CheckProgress) {
  await deps.db.update(datasets).set({ checkState: p, updatedAt: Date.now() }).where(whileValidating(d.id));
}

/** Back to `uploading` with `errors` saying why: the staged bytes stay, so /complete can start over. */
async function release(deps: WorkDeps, d: DatasetRow, message: string) {
  await deps.db
    .update(datasets)
    .set({ status: "uploading", checkState: null, errors: [{ message }], updatedAt: Date.now() })
    .where(whileValidating(d.id));
}

/** The last step: the verdict, exactly as the synchronous /complete used to give it. */
async function finish(
  deps: WorkDeps,
  d: DatasetRow,
  v: ObjectVersion,
  result: { sha256: string; stats: Record<string, unknown>; errors: DatasetIssue[] },
  upload?: StepUpload,
): Promise<void> {
  const bucket = deps.storage.bucket;
  if (result.sha256 !== d.sha256) {
    result.errors.unshift({ message: `sha256 of the upload is ${result.sha256}, ${d.sha256} was declared` });
  }
  const now = Date.now();
  const written = upload ? bucket.resumeMultipartUpload(d.objectKey, upload.uploadId) : null;
  if (result.errors.length > 0) {
    await written?.abort();
    await deps.db
      .update(datasets)
      .set({
        status: "invalid",
        errors: result.errors,
        stats: result.stats,
        uploadId: null,
        checkState: null,
        updatedAt: now,
        completedAt: now,
      })
      .where(whileValidating(d.id));
  } else {
    // The checked version becomes the dataset's object; the staging object goes only once the row
    // says `ready`, so a step that dies in between is redone from the staging object.
    // The steps already wrote every checked byte as a part: completing the upload is the copy.
    if (written && upload) await written.complete(upload.parts);
    else await promoteObject(bucket, v, d.objectKey, d.sha256);
    await deps.db
      .update(datasets)
      .set({
        status: "ready",
        stats: result.stats,
        errors: null,
        uploadId: null,
        checkState: null,
        updatedAt: now,
        completedAt: now,
      })
      .where(whileValidating(d.id));
  }
  await bucket.delete([v.key, checkStateKey(d.objectKey)]);
}

/**
 * The dataset check as queue work.
 *
 * @param chunkBytes bytes a resumable check reads per invocation (default CHECK_CHUNK_BYTES); a
 *   smaller value makes more, shorter invocations.
 */
export function makeDatasetCheckWork(opts: { chunkBytes?: number } = {}): WorkHandler {
  const chunkBytes = opts.chunkBytes ?? CHECK_CHUNK_BYTES;
  return {
    async chunk(deps, msg) {
      const d = await load(deps, msg);
      // Finished, deleted or released already (a duplicate or late message): nothing to do.
      if (!d || d.deletedAt !== null || d.status !== "validating") {
        if (d?.deletedAt) await deps.storage.bucket.delete(checkStateKey(d.objectKey));
        return "done";
      }
      const bucket = deps.storage.bucket;
      let p = d.checkState as CheckProgress | null;
      if (!p) {
        // Rows claimed before check_state existed: check whatever is staged now.
        const head = await bucket.head(stagingKey(d.objectKey));
        if (!head) {
          await release(deps, d, `Nothing is staged for dataset ${d.id}; upload the file again and call /complete.`);
          return "done";
        }
        p = {
          etag: head.etag,
          size: head.size,
          resumable: resumable(d),
          bytes_done: 0,
          bytes_total: head.size,
          started_at: Date.now(),
          chunks: 0,
        };
      }
      const v: ObjectVersion = { key: stagingKey(d.objectKey), etag: p.etag, size: p.size };
      const progress = p;
      let cursor: CheckCursor | undefined;
      try {
        let result: Awaited<ReturnType<typeof checkDataset>> | null;
        if (resumable(d)) {
          cursor = await loadCursor(bucket, d, v, progress.bytes_done);
          const dest = uploadsInSteps(v.size, chunkBytes) ? { key: d.objectKey, sha256: d.sha256 } : undefined;
          result = await checkStep(bucket, v, cursor, chunkBytes, dest);
          if (!result) {
            // Cursor first: a crash between the two writes only shows stale progress.
            await saveCursor(bucket, d.objectKey, cursor, v);
            await setProgress(deps, d, { ...progress, bytes_done: cursor.offset, chunks: progress.chunks + 1 });
            return "more";
          }
        } else {
          result = await checkDataset(bucket, d, v, (read) =>
            setProgress(deps, d, { ...progress, bytes_done: Math.min(read, v.size), chunks: progress.chunks + 1 }),
          );
        }
        await finish(deps, d, v, result, cursor?.upload);
        return "done";
      } catch (e) {
        if (!(e instanceof ObjectChanged)) throw e;
        if (cursor?.upload) await bucket.resumeMultipartUpload(d.objectKey, cursor.upload.uploadId).abort();
        await release(deps, d, replacedMessage(d.id));
        await bucket.delete(checkStateKey(d.objectKey));
        return "done";
      }
    },

    // Back to `uploading` rather than `invalid`: repeated failures are storage or runtime faults, not
    // the file's, and the staged bytes (and a resumable check's cursor) are kept, so /complete can
    // simply be called again.
    async giveUp(deps, msg, error) {
      const d = await load(deps, msg);
      if (!d || d.status !== "validating") return;
      const why = error instanceof Error ? error.message : String(error);
      await release(
        deps,
        d,
        `The check of dataset ${d.id} failed repeatedly (${why}); call /complete again to retry it from where it stopped.`,
      );
    },
  };
}

export const datasetCheckWork: WorkHandler = makeDatasetCheckWork();
