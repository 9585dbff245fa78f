/// Why a cluster could not start, or stopped, or a command about it failed: a message that says what and where.
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        /// The run directory or a file in it is unsafe or unusable.
        public static let runDirectory = Kind(name: "run directory")
        /// Another master holds the pid file.
        public static let alreadyRunning = Kind(name: "already running")
        /// The agent, or every worker, did not become ready.
        public static let startFailed = Kind(name: "start failed")
        /// A child exited too often within the crash-loop window.
        public static let crashLoop = Kind(name: "crash loop")
        /// No service runs (for stop and status).
        public static let notRunning = Kind(name: "not running")
        /// The control socket did not answer as expected.
        public static let control = Kind(name: "control")
        /// A lifecycle hook failed or did not finish in time.
        public static let hook = Kind(name: "hook")
        /// A cluster client could not start: a bad name, a socket path too long, started twice.
        public static let client = Kind(name: "cluster client")
        public var description: String { name }
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
