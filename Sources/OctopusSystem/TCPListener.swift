import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket opened by this process (close-on-exec: a child gets it only when it is handed down).
package enum TCPListener {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Opens, binds (SO_REUSEADDR) and listens; returns the descriptor and the port bound (the one asked, or the one
    /// the kernel chose for port 0).
    package static func open(host: String, port: Int, backlog: Int32 = 511) throws(Failure) -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let first = found else {
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(found) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)))")
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var bound = port
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard getsockname(fd, raw, &length) == 0 else { return }
                if Int32(raw.pointee.sa_family) == AF_INET {
                    raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { bound = Int(UInt16(bigEndian: $0.pointee.sin_port)) }
                } else if Int32(raw.pointee.sa_family) == AF_INET6 {
                    raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { bound = Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                }
            }
        }
        return (fd, bound)
    }
}
