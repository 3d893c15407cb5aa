#include <openssl/evp.h>
#include <openssl/modes.h>
