import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The service's private directory: the pid file and the control socket. Made 0700; one left with permissions for
/// others, or owned by another user, is refused, never reused.
struct RunDirectory: Sendable {
    let path: String

    var pidFile: String { path + "/octopus.pid" }
    var controlSocket: String { path + "/control.sock" }

    init(path: String) {
        self.path = path
    }

    /// Makes the directory (0700, parents as needed) or checks the one that is there.
    static func prepare(_ path: String) throws(ClusterError) -> RunDirectory {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else { throw failure(path, "cannot read it", errno) }
            let parent = (path as NSString).deletingLastPathComponent
            if !parent.isEmpty {
                do {
                    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
                } catch {
                    throw ClusterError(.runDirectory, "cannot make the run directory \(path): \(error.localizedDescription)")
                }
            }
            if mkdir(path, 0o700) != 0 && errno != EEXIST { throw failure(path, "cannot make it", errno) }
            guard lstat(path, &info) == 0 else { throw failure(path, "cannot read it", errno) }
        }
        try check(path, info, expectDirectory: true)
        return RunDirectory(path: path)
    }

    /// A socket file about to be replaced must be this user's and private (0600), like the directory.
    func checkLeftover(socket: String) throws(ClusterError) {
        var info = stat()
        guard lstat(socket, &info) == 0 else { return }
        try Self.check(socket, info, expectDirectory: false)
    }

    private static func check(_ path: String, _ info: stat, expectDirectory: Bool) throws(ClusterError) {
        let type = info.st_mode & S_IFMT
        if expectDirectory {
            guard type == S_IFDIR else {
                throw ClusterError(.runDirectory, "the run directory \(path) is not a directory (a symbolic link or a file is refused)")
            }
        } else {
            guard type == S_IFSOCK else {
                throw ClusterError(.runDirectory, "\(path) is in the way of the control socket and is not a socket; remove it")
            }
        }
        guard info.st_uid == geteuid() else {
            throw ClusterError(
                .runDirectory, "\(path) belongs to user id \(info.st_uid), not to this user (\(geteuid())); refusing to use it")
        }
        let mode = info.st_mode & 0o777
        let allowed: mode_t = expectDirectory ? 0o700 : 0o600
        guard mode & ~allowed == 0 else {
            throw ClusterError(
                .runDirectory,
                "\(path) has mode \(String(mode, radix: 8)); it must be \(String(allowed, radix: 8)) (nobody else may use it): run chmod \(String(allowed, radix: 8)) \(path), or remove it")
        }
    }

    private static func failure(_ path: String, _ what: String, _ code: Int32) -> ClusterError {
        ClusterError(.runDirectory, "run directory \(path): \(what): \(String(cString: strerror(code)))")
    }
}
