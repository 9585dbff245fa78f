/// The one error type of the RPC core: a stable numeric code, a message, and the action it concerns.
///
/// Codes keep node-octopus's numbers where the meanings match; the table is in README ("RPC error codes").
/// An error thrown by a handler on the far side arrives as `.remote` (30006) carrying the handler error's
/// description, unless the handler threw an `RPCError` itself, which travels unchanged.
public struct RPCError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(_ rawValue: Int) { self.rawValue = rawValue }

        /// No handler for the action anywhere the call could go.
        public static let noSuchAction = Code(30001)
        /// The caller has no connection to send on (never connected, or reconnecting).
        public static let notConnected = Code(30002)
        /// The call's deadline passed before an answer came.
        public static let timedOut = Code(30003)
        /// Reserved (node-octopus's number): today a failed write closes the connection and pending calls get 30014.
        public static let writeFailed = Code(30004)
        /// The calling task was cancelled.
        public static let cancelled = Code(30005)
        /// The handler on the far side threw an error; the message is its description.
        public static let remote = Code(30006)
        /// The call named a branch that is not bound.
        public static let targetOffline = Code(30007)
        /// A branch tried to bind with an id that another live connection holds.
        public static let duplicateBranch = Code(30008)
        /// The handshake was refused: wrong or missing secret, or a call before binding.
        public static let authenticationFailed = Code(30009)
        /// The peers speak different protocol versions.
        public static let versionMismatch = Code(30010)
        /// A frame (sent or received) is larger than the configured maximum.
        public static let frameTooLarge = Code(30011)
        /// An input or output could not be encoded or decoded by the codec.
        public static let codec = Code(30012)
        /// The endpoint was closed by its owner.
        public static let closed = Code(30013)
        /// The connection dropped while the call was pending.
        public static let disconnected = Code(30014)
        /// A frame broke the protocol (bad magic, version, kind, flags or head).
        public static let malformed = Code(30015)
        /// The handshake did not complete in time.
        public static let bindTimedOut = Code(30016)
        /// A subscription the serving side could not make (its real client threw); it is retried (node-octopus's
        /// number).
        public static let subscribeFailed = Code(30017)
        /// A message from another term: a leader that is no longer the leader, or a follower that has not heard of
        /// the newer one.
        public static let staleTerm = Code(30018)

        public var name: String {
            switch self {
            case .noSuchAction: "no such action"
            case .notConnected: "not connected"
            case .timedOut: "timed out"
            case .writeFailed: "write failed"
            case .cancelled: "cancelled"
            case .remote: "remote error"
            case .targetOffline: "target branch offline"
            case .duplicateBranch: "duplicate branch"
            case .authenticationFailed: "bind or authentication failed"
            case .versionMismatch: "version mismatch"
            case .frameTooLarge: "frame too large"
            case .codec: "codec error"
            case .closed: "closed"
            case .disconnected: "disconnected"
            case .malformed: "malformed message"
            case .bindTimedOut: "bind timed out"
            case .subscribeFailed: "subscribe failed on the server side"
            case .staleTerm: "stale term"
            default: "error"
            }
        }

        public var description: String { "\(rawValue)" }

        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(Int.self)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }
    }

    public var code: Code
    public var message: String
    /// The action the error concerns, when there is one.
    public var action: String?

    public init(_ code: Code, _ message: String, action: String? = nil) {
        self.code = code
        self.message = message
        self.action = action
    }

    public var description: String {
        var text = "RPC error \(code.rawValue) (\(code.name))"
        if let action { text += " in \"\(action)\"" }
        return text + ": " + message
    }

    /// Any error as an `RPCError`: itself when it is one, cancellation as `.cancelled`, anything else as `.remote`.
    package static func wrapping(_ error: any Error, action: String?) -> RPCError {
        if let refusal = error as? RPCRefusal { return wrapping(refusal.error, action: action) }
        if var rpc = error as? RPCError {
            if rpc.action == nil { rpc.action = action }
            return rpc
        }
        if error is CancellationError { return RPCError(.cancelled, "the handler was cancelled", action: action) }
        return RPCError(.remote, String(describing: error), action: action)
    }
}

/// Thrown by a handler to answer with `error` and then close the connection the request came on: the peer spoke out
/// of turn (a request for another leadership's term, say) and nothing more from it is listened to. Other connections
/// are not affected.
public struct RPCRefusal: Error, Sendable {
    public var error: RPCError

    public init(_ error: RPCError) {
        self.error = error
    }
}
