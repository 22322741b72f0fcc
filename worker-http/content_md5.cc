#include "worker-http/content_md5.h"

#include <openssl/evp.h>

namespace kelp {

std::string ContentMd5(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, EVP_md5(), nullptr) != 1) return "";
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, int(digest_len));
  return std::string(reinterpret_cast<char*>(encoded), size_t(n));
}

}  // namespace kelp
