// GET /v1/pretraining/jobs/{id}: built with the fine-tune one from views/job_routes.ts.
import { jobGetOperation } from "./views/job_routes";

export const registerV1PretrainingJobsGet = jobGetOperation(
  "pretrain",
  "A job's status, progress, ETA, latest metrics, loss and eval curves, and events",
);
