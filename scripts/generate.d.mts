export declare const generate: () => Promise<Record<string, string>>
