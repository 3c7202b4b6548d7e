// SPDX-License-Identifier: Apache-2.0
// The one include for Boost.Asio and Boost.Beast in proxy/ (STYLE: never include Boost
// directly). <utility> comes first: asio/awaitable.hpp in Boost 1.74 uses std::exchange
// without including it (chriskohlhoff/asio#944).
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace lj::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
#if defined(BOOST_ASIO_HAS_CO_AWAIT)  // not with clang 14 + libstdc++ (the fuzz targets)
template <class T>
using awaitable = boost::asio::awaitable<T>;
using boost::asio::use_awaitable;
#endif

}  // namespace lj::proxy
