import AsyncHTTPClient
import Crypto
import LetheCatalog
import LetheCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

// Issue 14, phase 0: the module's dependencies are declared; its transports (signed webhooks, SMTP,
// the Redis client of the deletion-set sink) come with part C.
