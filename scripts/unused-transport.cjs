// Stands in, inside pvdisk's bundle, for what dockerode and docker-modem load at start but pvdisk
// never uses: ssh2 (DOCKER_HOST=ssh://...), and grpc/protobuf (BuildKit build sessions). Loading
// them cost 200+ ms of every `pvdisk up`. Anything that reaches for them fails with one sentence.
const unsupported = () => {
  throw new Error('pvdisk reaches Docker over its unix socket or tcp://, not ssh://, and runs no image builds')
}
module.exports = new Proxy({}, { get: (_, key) => (key === '__esModule' ? false : unsupported) })
