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
        Digests.hmacSHA256(key: secret, message: proofMessage(nonce: nonce, branch: branch)).hex
    }

    /// Whether `proof` (hex) proves the secret for this nonce and branch; compared in constant time.
    static func verify(proof: String, secret: [UInt8], nonce: String, branch: String) -> Bool {
        guard let code = [UInt8](hex: proof) else { return false }
        return Digests.isValidHMAC(code, key: secret, message: proofMessage(nonce: nonce, branch: branch))
    }

    private static func proofMessage(nonce: String, branch: String) -> [UInt8] {
        Array("octopus-rpc-bind\n\(nonce)\n\(branch)".utf8)
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
