CREATE TABLE `model_imports` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`model_name` text NOT NULL,
	`manifest` text NOT NULL,
	`prefix` text NOT NULL,
	`version_id` text,
	`created_by` text,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`expires_at` integer NOT NULL,
	`completed_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`version_id`) REFERENCES `model_versions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `model_imports_tenant_idx` ON `model_imports` (`tenant_id`,`created_at`);--> statement-breakpoint
ALTER TABLE `training_jobs` ADD `init_from_version_id` text REFERENCES model_versions(id);--> statement-breakpoint
ALTER TABLE `training_jobs` ADD `promote` text DEFAULT 'always' NOT NULL;--> statement-breakpoint
ALTER TABLE `training_jobs` ADD `promotion` text;