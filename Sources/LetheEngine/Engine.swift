import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
