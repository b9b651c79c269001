// errno → our codes. The only place errno numbers become names.
#include "errors.h"

#include <cerrno>

namespace edgepoll {

ErrorCode errnoCode(int err) {
  switch (err) {
    case 0: return kOK;
    case ECONNRESET: return kECONNRESET;
    case EPIPE: return kEPIPE;
    case ETIMEDOUT: return kETIMEDOUT;
    case EMFILE: return kEMFILE;
    case ENFILE: return kENFILE;
    case ENOSPC: return kENOSPC;
    case ENOMEM: case ENOBUFS: return kENOMEM;
    default: return kEIO;
  }
}

}  // namespace edgepoll
