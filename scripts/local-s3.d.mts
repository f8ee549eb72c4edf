export function localS3Credentials(root?: URL): { S3_ACCESS_KEY_ID: string; S3_SECRET_ACCESS_KEY: string };
