// The library API: load and validate a state, install an app's storage. The CLI is a thin
// layer over these.
export { loadState, validateFile, validatePaths, checkApp, checkDeviceFile } from './state.js'
export type { AppState, CheckedFile, LoadedState } from './state.js'
export { installApp, InvalidInputError, type InstallResult } from './app-install.js'
export { resolveDisk, type DiskEntry, type DiskIndex } from './check-device.js'
export type { Storage } from './check-app.js'
export { PvdiskError, isPvdiskError, type ErrorCode } from './errors.js'
export { formatProblem, type Problem, type Severity } from './problems.js'
export { parseCryptPath, type CryptPath } from './crypt-path.js'
export { parsePersistenceKey, parsePersistenceValue, volumeNameOf, PERSISTENCE_TYPES, type PersistenceType } from './persistence.js'
export type { DeviceJson, RunJson, SrcJson, DeviceDisk, DeviceVolume, RunVolume } from './generated/schema-types.js'
