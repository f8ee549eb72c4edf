export const OUT_DIR: string;
export function buildDashboard(): Promise<void>;
