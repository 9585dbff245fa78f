import Octopus
import Logging

/// A request's hot path: the access log, logged on every request.
struct AccessLog {
    let log = Logger(label: "http.access").direct   // made once and kept, as the logger is

    func served(_ path: String, status: Int, microseconds: Int) {
        log.info("\(path) \(status) \(microseconds)us")   // the message is built on the stack: no allocation
    }
}
