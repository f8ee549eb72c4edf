// GET /v1/finetuning/jobs: built with the pretraining list from views/job_routes.ts.
import { jobListOperation } from "./views/job_routes";

export const registerV1FinetuningJobsList = jobListOperation(
  "finetune",
  "List fine-tune jobs, newest first (curves and events only on GET one)",
);
