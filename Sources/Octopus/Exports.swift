@_exported import Logging
@_exported import OctopusConfig
@_exported import OctopusLog
@_exported import OctopusSchedule
