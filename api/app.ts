import { HTTPException } from "hono/http-exception";
import { ApiError, problemResponse } from "./lib/errors";
import { newRouter } from "./lib/openapi";
import { forgetKey } from "./middleware/auth";
import { countInFlight, init, requestIds } from "./middleware/init";
import { registerDocs } from "./routes/docs";
import { registerHealth } from "./routes/health";
import { registerMetrics } from "./routes/metrics";
import { registerV1ClassificationsCreate } from "./routes/v1_classifications_create";
import { registerV1DatasetsComplete } from "./routes/v1_datasets_complete";
import { registerV1DatasetsContent } from "./routes/v1_datasets_content";
import { registerV1DatasetsCreate } from "./routes/v1_datasets_create";
import { registerV1DatasetsDelete } from "./routes/v1_datasets_delete";
import { registerV1DatasetsGet } from "./routes/v1_datasets_get";
import { registerV1DatasetsList } from "./routes/v1_datasets_list";
import { registerV1DatasetsSample } from "./routes/v1_datasets_sample";
import { registerV1DatasetsUploadUrls } from "./routes/v1_datasets_upload_urls";
import { registerV1EmbeddingsCreate } from "./routes/v1_embeddings_create";
import { registerV1EvaluationsCreate } from "./routes/v1_evaluations_create";
import { registerV1EvaluationsGet } from "./routes/v1_evaluations_get";
import { registerV1EvaluationsList } from "./routes/v1_evaluations_list";
import { registerV1FinetuningJobsCancel } from "./routes/v1_finetuning_jobs_cancel";
import { registerV1FinetuningJobsCreate } from "./routes/v1_finetuning_jobs_create";
import { registerV1FinetuningJobsGet } from "./routes/v1_finetuning_jobs_get";
import { registerV1FinetuningJobsList } from "./routes/v1_finetuning_jobs_list";
import { registerV1KeysCreate } from "./routes/v1_keys_create";
import { registerV1KeysDelete } from "./routes/v1_keys_delete";
import { registerV1KeysList } from "./routes/v1_keys_list";
import { registerV1ModelsAliasesHistory } from "./routes/v1_models_aliases_history";
import { registerV1ModelsAliasesPut } from "./routes/v1_models_aliases_put";
import { registerV1ModelsGet } from "./routes/v1_models_get";
import { registerV1ModelsImportsComplete } from "./routes/v1_models_imports_complete";
import { registerV1ModelsImportsCreate } from "./routes/v1_models_imports_create";
import { registerV1ModelsInfo } from "./routes/v1_models_info";
import { registerV1ModelsList } from "./routes/v1_models_list";
import { registerV1ModelsVersionsCreate } from "./routes/v1_models_versions_create";
import { registerV1ModelsVersionsGet } from "./routes/v1_models_versions_get";
import { registerV1ModelsVersionsList } from "./routes/v1_models_versions_list";
import { registerV1PretrainingJobsCancel } from "./routes/v1_pretraining_jobs_cancel";
import { registerV1PretrainingJobsCreate } from "./routes/v1_pretraining_jobs_create";
import { registerV1PretrainingJobsGet } from "./routes/v1_pretraining_jobs_get";
import { registerV1PretrainingJobsList } from "./routes/v1_pretraining_jobs_list";
import { registerV1ProbesCreate } from "./routes/v1_probes_create";
import { registerV1ProbesGet } from "./routes/v1_probes_get";
import { registerV1ProbesList } from "./routes/v1_probes_list";
import { registerV1ProbesPredict } from "./routes/v1_probes_predict";
import { registerV1Tokenize } from "./routes/v1_tokenize";
import { registerV1TrainerClaim } from "./routes/v1_trainer_claim";
import { registerV1TrainerComplete } from "./routes/v1_trainer_complete";
import { registerV1TrainerFail } from "./routes/v1_trainer_fail";
import { registerV1TrainerHeartbeat } from "./routes/v1_trainer_heartbeat";
import { registerV1TrainerUploads } from "./routes/v1_trainer_uploads";

const ROUTES = [
  // First: its middleware times and counts every route registered after it.
  registerMetrics,
  registerHealth,
  registerV1KeysCreate,
  registerV1KeysList,
  registerV1KeysDelete,
  registerV1ModelsList,
  registerV1ModelsGet,
  registerV1ModelsVersionsList,
  registerV1ModelsVersionsGet,
  registerV1ModelsVersionsCreate,
  registerV1ModelsImportsCreate,
  registerV1ModelsImportsComplete,
  registerV1ModelsAliasesPut,
  registerV1ModelsAliasesHistory,
  registerV1DatasetsCreate,
  registerV1DatasetsContent,
  registerV1DatasetsComplete,
  registerV1DatasetsList,
  registerV1DatasetsGet,
  registerV1DatasetsSample,
  registerV1DatasetsDelete,
  registerV1DatasetsUploadUrls,
  registerV1PretrainingJobsCreate,
  registerV1PretrainingJobsList,
  registerV1PretrainingJobsGet,
  registerV1PretrainingJobsCancel,
  registerV1FinetuningJobsCreate,
  registerV1FinetuningJobsList,
  registerV1FinetuningJobsGet,
  registerV1FinetuningJobsCancel,
  registerV1TrainerClaim,
  registerV1TrainerHeartbeat,
  registerV1TrainerUploads,
  registerV1TrainerComplete,
  registerV1TrainerFail,
  registerV1ModelsInfo,
  registerV1EmbeddingsCreate,
  registerV1ClassificationsCreate,
  registerV1Tokenize,
  registerV1ProbesCreate,
  registerV1ProbesList,
  registerV1ProbesGet,
  registerV1ProbesPredict,
  registerV1EvaluationsCreate,
  registerV1EvaluationsList,
  registerV1EvaluationsGet,
];

/** `/v1/models/:name/versions` -> a RegExp matching concrete paths, to tell 405 from 404. */
const pathPattern = (path: string) =>
  new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+")}/?$`);

export function createApp() {
  const app = newRouter();
  app.use("*", countInFlight, requestIds, init);
  // A revoked key stops working in this isolate at once, not after the key cache's TTL.
  app.on("DELETE", "/v1/keys/:id", async (c, next) => {
    await next();
    if (c.res.status === 200) forgetKey(c.req.param("id"));
  });
  for (const register of ROUTES) register(app);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key (`ss_...`). `make dev` prints an admin key; `POST /v1/keys` creates scoped ones.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "selfsup API",
      version: "0.1.0",
      description:
        "Self-supervised pretraining, fine-tuning, a model registry, OpenAI-compatible embeddings, classifications and probes.",
    },
    servers: [{ url: "http://127.0.0.1:8787", description: "make dev" }],
  });
  registerDocs(app);

  const known = app.routes
    .filter((r) => r.method !== "ALL")
    .map((r) => ({ method: r.method, re: pathPattern(r.path) }));

  app.notFound((c) => {
    const requestId = c.get("requestId") ?? "unknown";
    const allowed = [...new Set(known.filter((r) => r.re.test(c.req.path)).map((r) => r.method))];
    if (allowed.length > 0) {
      return problemResponse(
        405,
        "method_not_allowed",
        `${c.req.method} is not supported here; use ${allowed.join(", ")}.`,
        requestId,
        undefined,
        {
          allow: allowed.join(", "),
        },
      );
    }
    return problemResponse(404, "not_found", `No route ${c.req.method} ${c.req.path}; see /openapi.json.`, requestId);
  });

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? "unknown";
    if (err instanceof ApiError) {
      return problemResponse(err.status, err.code, err.message, requestId, err.errors, err.headers);
    }
    if (err instanceof HTTPException && err.status < 500) {
      // Hono's own 4xx (e.g. the JSON validator's "Malformed JSON in request body").
      return problemResponse(
        err.status,
        err.status === 400 ? "malformed_request" : "http_error",
        err.message,
        requestId,
      );
    }
    // Log the cause for operators; the caller sees only the request id.
    console.error(
      JSON.stringify({
        level: "error",
        requestId,
        method: c.req.method,
        path: c.req.path,
        error: String(err),
        stack: (err as Error).stack,
      }),
    );
    return problemResponse(
      500,
      "internal_error",
      `Unexpected error; quote request id ${requestId} when reporting it.`,
      requestId,
    );
  });
  return app;
}
