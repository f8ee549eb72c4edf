// GET /v1/finetuning/jobs/{id}: built with the pretraining one from views/job_routes.ts.
import { jobGetOperation } from "./views/job_routes";

export const registerV1FinetuningJobsGet = jobGetOperation(
  "finetune",
  "A fine-tune job's status, progress, metrics, loss and eval curves, and events",
);
