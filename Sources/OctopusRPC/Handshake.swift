/// The bind exchange, in handshake frames with JSON bodies:
/// 1. master → branch `challenge`: the master's id, the protocol version and a fresh 32-byte nonce;
/// 2. branch → master `bind`: the branch's id, version, the actions it offers and, when a secret is set,
///    `proof` = HMAC-SHA256(secret, "octopus-rpc-bind\n" + nonce + "\n" + branch id) in hex;
/// 3. master → branch `welcome` (the directory) or a handshake frame with `.error` carrying an `RPCError`,
///    after which the master closes the connection.
struct HandshakeMessage: Codable, Sendable {
    static let protocolVersion = 1

    var stage: String
    var version: Int
    var id: String
    var nonce: String?
    var proof: String?
    var actions: [String]?
    /// welcome: who offers what (branch id → actions), the master included under its id.
    var directory: [String: [String]]?
    /// welcome: the names this branch offers that another already serves (see the rule in README).
    var duplicates: [String]?

    static func proof(secret: [UInt8], nonce: String, branch: String) -> String {
        SHA256.hmac(key: secret, message: Array("octopus-rpc-bind\n\(nonce)\n\(branch)".utf8)).hex
    }
}

/// The body of an online or offline notice (one-way frames named `octopus.online` and `octopus.offline`).
struct PresenceNotice: Codable, Sendable {
    static let online = "octopus.online"
    static let offline = "octopus.offline"

    var branch: String
    var actions: [String]
}

/// What a master or branch reports as it goes.
public enum RPCEvent: Sendable, Equatable {
    /// A branch bound (at the master: any; at a branch: another one).
    case online(branch: String, actions: [String])
    /// A branch's connection ended.
    case offline(branch: String)
    /// Branch only: bound to the master (first time and after each reconnection).
    case connected(master: String)
    /// Branch only: the connection to the master ended; reconnection follows.
    case disconnected(reason: String)
}
