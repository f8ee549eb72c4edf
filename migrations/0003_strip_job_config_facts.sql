-- Each fact once (issue 17): a job's objective, preset and modality live in their columns, so the
-- config JSON keeps only the hyperparameters. The claim answer rebuilds the trainer's config from both.
UPDATE `training_jobs` SET `config` = json_remove(`config`, '$.objective', '$.preset', '$.modality');
