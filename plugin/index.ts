// The library API: load and validate a state, install an app's storage. The CLI is a thin
// layer over these.
export { loadState, validateFile, validatePaths, checkApp, checkDeviceFile } from './config/state.js'
export type { AppState, CheckedFile, LoadedState } from './config/state.js'
export { installApp, type InstallResult } from './config/app-install.js'
export { InvalidInputError } from './config/problems.js'
export { resolveDisk, type DiskEntry, type DiskIndex } from './config/check-device.js'
export type { Storage } from './config/check-app.js'
export { PvdiskError, isPvdiskError, type ErrorCode } from './errors.js'
export { formatProblem, type Problem, type Severity } from './config/problems.js'
export { parseCryptPath, type CryptPath } from './config/crypt-path.js'
export { parsePersistenceKey, parsePersistenceValue, volumeNameOf, PERSISTENCE_TYPES, type PersistenceType } from './config/persistence.js'
export type { DeviceJson, RunJson, SrcJson, DeviceDisk, DeviceVolume, RunVolume } from './config/generated/schema-types.js'
