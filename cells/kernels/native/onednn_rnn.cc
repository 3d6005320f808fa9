// oneDNN's RNN primitive as XLA FFI targets: `cells.scan(..., backend='onednn')` on CPU.
//
// One primitive call runs a whole sequence (every step, every layer of a stack, both
// directions), forward for training (it fills oneDNN's workspace) or inference, and the
// backward (gradients of the inputs, the initial carries, both weight tensors and the bias).
// Cells (attribute `cell`), with oneDNN's gate orders (the Python wrapper permutes ours):
//
//   0  LSTM         i, f, c~, o           bias [i, f, c~, o]
//   1  LBR GRU      u, r, o               bias [u, r, o, u']   (our GRU, reset_after=True)
//   2  GRU          u, r, o               bias [u, r, o]       (our GRU, reset_after=False)
//
// Layouts (the buffers XLA hands us, row-major): x [N, T, I] (oneDNN's ntc), h0/c0/hn/cn
// [L, D, N, H] (ldnc), w_layer [L, D, I, G, H] and w_iter [L, D, H, G, H] (ldigo), bias
// [L, D, Gb, H] (ldgo), y [N, T, D * H] (ntc). `direction`: 0 left to right, 1 right to left,
// 2 bidirectional (outputs concatenated). The weights are reordered once per call into the
// layout the primitive asks for (packed GEMM formats), never per step. Primitive descriptors
// and primitives are built once per shape and kept. Each call runs in a TBB arena of
// `threads` threads (the Python side passes XLA's own thread setting).
//
// The weight gradients of oneDNN's backward accumulate into their buffers; they are zeroed
// first. Errors come back to JAX as FFI errors (an XlaRuntimeError in Python), never aborts.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
#include <oneapi/tbb/task_arena.h>
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

enum Cell : int64_t { kLstm = 0, kLbrGru = 1, kGru = 2 };

struct Key {
  int64_t cell, direction, layers, steps, batch, inputs, hidden;
  bool training;
  bool operator<(const Key& o) const {
    return std::tie(cell, direction, layers, steps, batch, inputs, hidden, training) <
           std::tie(o.cell, o.direction, o.layers, o.steps, o.batch, o.inputs, o.hidden,
                    o.training);
  }
  int64_t directions() const { return direction == 2 ? 2 : 1; }
  int64_t gates() const { return cell == kLstm ? 4 : 3; }
  int64_t bias_gates() const { return cell == kLbrGru ? 4 : gates(); }
  dnnl::rnn_direction rnn_direction() const {
    if (direction == 1) return dnnl::rnn_direction::unidirectional_right2left;
    if (direction == 2) return dnnl::rnn_direction::bidirectional_concat;
    return dnnl::rnn_direction::unidirectional_left2right;
  }
};

// The memory descriptors of the buffers XLA passes (user layouts) and the `any` weights.
struct Descs {
  memory::desc src_layer, iter, weights_layer, weights_iter, bias, dst_layer;
  memory::desc any_weights_layer, any_weights_iter;
  explicit Descs(const Key& k) {
    const int64_t L = k.layers, D = k.directions(), G = k.gates();
    src_layer = memory::desc({k.steps, k.batch, k.inputs}, dt::f32, tag::ntc);
    iter = memory::desc({L, D, k.batch, k.hidden}, dt::f32, tag::ldnc);
    weights_layer = memory::desc({L, D, k.inputs, G, k.hidden}, dt::f32, tag::ldigo);
    weights_iter = memory::desc({L, D, k.hidden, G, k.hidden}, dt::f32, tag::ldigo);
    bias = memory::desc({L, D, k.bias_gates(), k.hidden}, dt::f32, tag::ldgo);
    dst_layer = memory::desc({k.steps, k.batch, D * k.hidden}, dt::f32, tag::ntc);
    any_weights_layer = memory::desc({L, D, k.inputs, G, k.hidden}, dt::f32, tag::any);
    any_weights_iter = memory::desc({L, D, k.hidden, G, k.hidden}, dt::f32, tag::any);
  }
};

struct Plan {
  dnnl::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::primitive_desc bwd_pd;  // training plans only
  dnnl::primitive bwd;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: concurrent calls are safe
  return attr;
}

// A primitive descriptor from the memory descriptors, in oneDNN 3's API (engine first) or 2's
// (an operation descriptor first; e.g. Debian 12's libdnnl 2.6).
template <typename Prim, typename... Mds>
typename Prim::primitive_desc forward_pd(dnnl::prop_kind prop, const Key& k, const Mds&... mds) {
#if DNNL_VERSION_MAJOR >= 3
  return typename Prim::primitive_desc(cpu_engine(), prop, k.rnn_direction(), mds...,
                                       user_scratchpad());
#else
  return typename Prim::primitive_desc(typename Prim::desc(prop, k.rnn_direction(), mds...),
                                       user_scratchpad(), cpu_engine());
#endif
}

template <typename Prim, typename Hint, typename... Mds>
typename Prim::primitive_desc backward_pd(const Hint& hint, const Key& k, const Mds&... mds) {
  const auto prop = dnnl::prop_kind::backward;
#if DNNL_VERSION_MAJOR >= 3
  return typename Prim::primitive_desc(cpu_engine(), prop, k.rnn_direction(), mds..., hint,
                                       user_scratchpad());
#else
  return typename Prim::primitive_desc(typename Prim::desc(prop, k.rnn_direction(), mds...),
                                       user_scratchpad(), cpu_engine(), hint);
#endif
}

// Forward (and, for training, backward) primitives of one cell type, built together because
// the backward needs the typed forward descriptor as its hint. Weights are `any`: the
// primitive picks its layout and each call reorders ours into it.
template <typename Fwd, typename Bwd, bool kHasC>
Plan make_plan(const Key& k) {
  const Descs d(k);
  const auto prop =
      k.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const auto& wl = d.any_weights_layer;
  const auto& wi = d.any_weights_iter;
  typename Fwd::primitive_desc fwd_pd;
  if constexpr (kHasC) {
    fwd_pd = forward_pd<Fwd>(prop, k, d.src_layer, d.iter, d.iter, wl, wi, d.bias, d.dst_layer,
                             d.iter, d.iter);
  } else {
    fwd_pd = forward_pd<Fwd>(prop, k, d.src_layer, d.iter, wl, wi, d.bias, d.dst_layer, d.iter);
  }
  Plan plan;
  plan.fwd_pd = fwd_pd;
  plan.fwd = dnnl::primitive(fwd_pd);
  if (!k.training) return plan;
  typename Bwd::primitive_desc bwd_pd;
  if constexpr (kHasC) {
    bwd_pd = backward_pd<Bwd>(fwd_pd, k, d.src_layer, d.iter, d.iter, wl, wi, d.bias,
                              d.dst_layer, d.iter, d.iter, d.src_layer, d.iter, d.iter, wl, wi,
                              d.bias, d.dst_layer, d.iter, d.iter);
  } else {
    bwd_pd = backward_pd<Bwd>(fwd_pd, k, d.src_layer, d.iter, wl, wi, d.bias, d.dst_layer,
                              d.iter, d.src_layer, d.iter, wl, wi, d.bias, d.dst_layer, d.iter);
  }
  plan.bwd_pd = bwd_pd;
  plan.bwd = dnnl::primitive(bwd_pd);
  return plan;
}

const Plan& plan_for(const Key& k) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(k);
  if (it != plans.end()) return *it->second;
  Plan plan;
  switch (k.cell) {
    case kLstm:
      plan = make_plan<dnnl::lstm_forward, dnnl::lstm_backward, true>(k);
      break;
    case kLbrGru:
      plan = make_plan<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward, false>(k);
      break;
    case kGru:
      plan = make_plan<dnnl::gru_forward, dnnl::gru_backward, false>(k);
      break;
    default:
      throw std::invalid_argument("cell must be 0 (LSTM), 1 (LBR GRU) or 2 (GRU), got " +
                                  std::to_string(k.cell));
  }
  return *plans.emplace(k, std::make_unique<Plan>(std::move(plan))).first->second;
}

// Runs `body` on `threads` threads: an OpenMP team of that size (Intel's gomp wheels, Debian's build) or a TBB arena
// (Intel's); a sequential build runs on the calling thread.
template <typename F>
void run_with_threads(int64_t threads, F&& body) {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  omp_set_num_threads(static_cast<int>(threads));  // this thread's teams only
  body();
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
  static std::mutex mutex;
  static std::unordered_map<int64_t, std::unique_ptr<oneapi::tbb::task_arena>> arenas;
  oneapi::tbb::task_arena* arena;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = arenas[threads];
    if (!slot) slot = std::make_unique<oneapi::tbb::task_arena>(static_cast<int>(threads));
    arena = slot.get();
  }
  arena->execute(body);
#else
  (void)threads;
  body();
#endif
}

memory wrap(const memory::desc& md, const void* data) {
  return memory(md, cpu_engine(), const_cast<void*>(data));
}

// `user` in the layout the primitive asks for: itself, or a reordered copy.
memory as_layout(const memory& user, const memory::desc& wanted, dnnl::stream& s) {
  if (user.get_desc() == wanted) return user;
  memory out(wanted, cpu_engine());
  dnnl::reorder(user, out).execute(s, const_cast<memory&>(user), out);
  return out;
}

// A gradient buffer in the primitive's layout, zeroed (oneDNN accumulates into it).
memory zeroed(const memory& user, const memory::desc& wanted) {
  memory out = user.get_desc() == wanted ? user : memory(wanted, cpu_engine());
  std::memset(out.get_data_handle(), 0, wanted.get_size());
  return out;
}

void copy_back(const memory& from, memory& user, dnnl::stream& s) {
  if (from.get_data_handle() == user.get_data_handle()) return;
  dnnl::reorder(from, user).execute(s, const_cast<memory&>(from), user);
}

// The arguments forward and backward share: the inputs, the weights in the primitive's layout,
// the outputs of the forward (written by it, read by the backward) and a fresh scratchpad.
std::unordered_map<int, memory> shared_args(const Descs& d, const dnnl::primitive_desc& pd,
                                            dnnl::stream& s, const void* x, const void* h0,
                                            const void* w_layer, const void* w_iter,
                                            const void* bias, const void* y, const void* hn) {
  const auto md = [&](int arg) { return pd.query_md(dnnl::query::exec_arg_md, arg); };
  return {
      {DNNL_ARG_SRC_LAYER, wrap(d.src_layer, x)},
      {DNNL_ARG_SRC_ITER, wrap(d.iter, h0)},
      {DNNL_ARG_WEIGHTS_LAYER,
       as_layout(wrap(d.weights_layer, w_layer), md(DNNL_ARG_WEIGHTS_LAYER), s)},
      {DNNL_ARG_WEIGHTS_ITER, as_layout(wrap(d.weights_iter, w_iter), md(DNNL_ARG_WEIGHTS_ITER), s)},
      {DNNL_ARG_BIAS, wrap(d.bias, bias)},
      {DNNL_ARG_DST_LAYER, wrap(d.dst_layer, y)},
      {DNNL_ARG_DST_ITER, wrap(d.iter, hn)},
      {DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), cpu_engine())},
  };
}

Key key_of(int64_t cell, int64_t direction, bool training, ffi::AnyBuffer x,
           ffi::AnyBuffer h0, ffi::AnyBuffer w_layer) {
  const auto xd = x.dimensions(), hd = h0.dimensions();
  // x [N, T, I], h0 [L, D, N, H]
  return Key{cell, direction, hd[0], xd[1], xd[0], xd[2], hd[3], training};
}

ffi::Error check_shapes(const Key& k, ffi::AnyBuffer x, ffi::AnyBuffer h0,
                        ffi::AnyBuffer w_layer, ffi::AnyBuffer w_iter, ffi::AnyBuffer bias) {
  if (x.dimensions().size() != 3 || h0.dimensions().size() != 4 ||
      w_layer.dimensions().size() != 5 || w_iter.dimensions().size() != 5 ||
      bias.dimensions().size() != 4) {
    return ffi::Error::InvalidArgument(
        "onednn_rnn: expected x [N, T, I], h0 [L, D, N, H], w_layer [L, D, I, G, H], "
        "w_iter [L, D, H, G, H], bias [L, D, Gb, H]");
  }
  const auto wl = w_layer.dimensions();
  if (h0.dimensions()[1] != k.directions() || wl[2] != k.inputs || wl[3] != k.gates() ||
      wl[4] != k.hidden || bias.dimensions()[2] != k.bias_gates()) {
    return ffi::Error::InvalidArgument("onednn_rnn: the buffers' shapes do not agree");
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::AnyBuffer x, ffi::AnyBuffer h0, ffi::AnyBuffer c0,
                   ffi::AnyBuffer w_layer, ffi::AnyBuffer w_iter, ffi::AnyBuffer bias,
                   ffi::Result<ffi::AnyBuffer> y, ffi::Result<ffi::AnyBuffer> hn,
                   ffi::Result<ffi::AnyBuffer> cn, ffi::Result<ffi::AnyBuffer> workspace,
                   int64_t cell, int64_t direction, bool training, int64_t threads) {
  try {
    const Key k = key_of(cell, direction, training, x, h0, w_layer);
    if (auto err = check_shapes(k, x, h0, w_layer, w_iter, bias); err.failure()) return err;
    const Plan& plan = plan_for(k);
    const Descs d(k);
    const auto& pd = plan.fwd_pd;
    const auto md = [&](int arg) { return pd.query_md(dnnl::query::exec_arg_md, arg); };
    if (training && workspace->size_bytes() != md(DNNL_ARG_WORKSPACE).get_size()) {
      return ffi::Error::Internal("onednn_rnn: the workspace buffer has the wrong size");
    }
    run_with_threads(threads, [&] {
      dnnl::stream s(cpu_engine());
      auto args = shared_args(d, pd, s, x.untyped_data(), h0.untyped_data(),
                              w_layer.untyped_data(), w_iter.untyped_data(), bias.untyped_data(),
                              y->untyped_data(), hn->untyped_data());
      if (cell == kLstm) {
        args[DNNL_ARG_SRC_ITER_C] = wrap(d.iter, c0.untyped_data());
        args[DNNL_ARG_DST_ITER_C] = wrap(d.iter, cn->untyped_data());
      }
      if (training) {
        args[DNNL_ARG_WORKSPACE] = wrap(md(DNNL_ARG_WORKSPACE), workspace->untyped_data());
      }
      plan.fwd.execute(s, args);
      s.wait();
    });
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("onednn_rnn forward: ") + e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::AnyBuffer x, ffi::AnyBuffer h0, ffi::AnyBuffer c0,
                    ffi::AnyBuffer w_layer, ffi::AnyBuffer w_iter, ffi::AnyBuffer bias,
                    ffi::AnyBuffer y, ffi::AnyBuffer hn, ffi::AnyBuffer cn,
                    ffi::AnyBuffer workspace, ffi::AnyBuffer dy, ffi::AnyBuffer dhn,
                    ffi::AnyBuffer dcn, ffi::Result<ffi::AnyBuffer> dx,
                    ffi::Result<ffi::AnyBuffer> dh0, ffi::Result<ffi::AnyBuffer> dc0,
                    ffi::Result<ffi::AnyBuffer> dw_layer, ffi::Result<ffi::AnyBuffer> dw_iter,
                    ffi::Result<ffi::AnyBuffer> dbias, int64_t cell, int64_t direction,
                    int64_t threads) {
  try {
    const Key k = key_of(cell, direction, /*training=*/true, x, h0, w_layer);
    if (auto err = check_shapes(k, x, h0, w_layer, w_iter, bias); err.failure()) return err;
    const Plan& plan = plan_for(k);
    const Descs d(k);
    const auto& pd = plan.bwd_pd;
    const auto md = [&](int arg) { return pd.query_md(dnnl::query::exec_arg_md, arg); };
    run_with_threads(threads, [&] {
      dnnl::stream s(cpu_engine());
      auto args = shared_args(d, pd, s, x.untyped_data(), h0.untyped_data(),
                              w_layer.untyped_data(), w_iter.untyped_data(), bias.untyped_data(),
                              y.untyped_data(), hn.untyped_data());
      memory dwl_user = wrap(d.weights_layer, dw_layer->untyped_data());
      memory dwi_user = wrap(d.weights_iter, dw_iter->untyped_data());
      memory db_user = wrap(d.bias, dbias->untyped_data());
      memory dwl = zeroed(dwl_user, md(DNNL_ARG_DIFF_WEIGHTS_LAYER));
      memory dwi = zeroed(dwi_user, md(DNNL_ARG_DIFF_WEIGHTS_ITER));
      memory db = zeroed(db_user, md(DNNL_ARG_DIFF_BIAS));
      args.insert({
          {DNNL_ARG_WORKSPACE, wrap(md(DNNL_ARG_WORKSPACE), workspace.untyped_data())},
          {DNNL_ARG_DIFF_SRC_LAYER, wrap(d.src_layer, dx->untyped_data())},
          {DNNL_ARG_DIFF_SRC_ITER, wrap(d.iter, dh0->untyped_data())},
          {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl},
          {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi},
          {DNNL_ARG_DIFF_BIAS, db},
          {DNNL_ARG_DIFF_DST_LAYER, wrap(d.dst_layer, dy.untyped_data())},
          {DNNL_ARG_DIFF_DST_ITER, wrap(d.iter, dhn.untyped_data())},
      });
      if (cell == kLstm) {
        args[DNNL_ARG_SRC_ITER_C] = wrap(d.iter, c0.untyped_data());
        args[DNNL_ARG_DST_ITER_C] = wrap(d.iter, cn.untyped_data());
        args[DNNL_ARG_DIFF_SRC_ITER_C] = wrap(d.iter, dc0->untyped_data());
        args[DNNL_ARG_DIFF_DST_ITER_C] = wrap(d.iter, dcn.untyped_data());
      }
      plan.bwd.execute(s, args);
      copy_back(dwl, dwl_user, s);
      copy_back(dwi, dwi_user, s);
      copy_back(db, db_user, s);
      s.wait();
    });
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("onednn_rnn backward: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnRnnForward, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // x
                                  .Arg<ffi::AnyBuffer>()  // h0
                                  .Arg<ffi::AnyBuffer>()  // c0 (LSTM; else empty)
                                  .Arg<ffi::AnyBuffer>()  // w_layer
                                  .Arg<ffi::AnyBuffer>()  // w_iter
                                  .Arg<ffi::AnyBuffer>()  // bias
                                  .Ret<ffi::AnyBuffer>()  // y
                                  .Ret<ffi::AnyBuffer>()  // hn
                                  .Ret<ffi::AnyBuffer>()  // cn (LSTM; else empty)
                                  .Ret<ffi::AnyBuffer>()  // workspace (training; else empty)
                                  .Attr<int64_t>("cell")
                                  .Attr<int64_t>("direction")
                                  .Attr<bool>("training")
                                  .Attr<int64_t>("threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnRnnBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // x
                                  .Arg<ffi::AnyBuffer>()  // h0
                                  .Arg<ffi::AnyBuffer>()  // c0
                                  .Arg<ffi::AnyBuffer>()  // w_layer
                                  .Arg<ffi::AnyBuffer>()  // w_iter
                                  .Arg<ffi::AnyBuffer>()  // bias
                                  .Arg<ffi::AnyBuffer>()  // y
                                  .Arg<ffi::AnyBuffer>()  // hn
                                  .Arg<ffi::AnyBuffer>()  // cn
                                  .Arg<ffi::AnyBuffer>()  // workspace
                                  .Arg<ffi::AnyBuffer>()  // dy
                                  .Arg<ffi::AnyBuffer>()  // dhn
                                  .Arg<ffi::AnyBuffer>()  // dcn
                                  .Ret<ffi::AnyBuffer>()  // dx
                                  .Ret<ffi::AnyBuffer>()  // dh0
                                  .Ret<ffi::AnyBuffer>()  // dc0
                                  .Ret<ffi::AnyBuffer>()  // dw_layer
                                  .Ret<ffi::AnyBuffer>()  // dw_iter
                                  .Ret<ffi::AnyBuffer>()  // dbias
                                  .Attr<int64_t>("cell")
                                  .Attr<int64_t>("direction")
                                  .Attr<int64_t>("threads"));

// For the Python side (ctypes), at trace time: the workspace's size in bytes for a training
// forward of this shape, or -1 when oneDNN refuses the shape (message in onednn_rnn_error).
namespace {
thread_local std::string last_error;
}

extern "C" int64_t onednn_rnn_workspace_bytes(int64_t cell, int64_t direction, int64_t layers,
                                              int64_t steps, int64_t batch, int64_t inputs,
                                              int64_t hidden) {
  try {
    const Key k{cell, direction, layers, steps, batch, inputs, hidden, /*training=*/true};
    const Plan& plan = plan_for(k);
    return static_cast<int64_t>(plan.fwd_pd.workspace_desc().get_size());
  } catch (const std::exception& e) {
    last_error = e.what();
    return -1;
  }
}

extern "C" const char* onednn_rnn_error() { return last_error.c_str(); }

extern "C" const char* onednn_rnn_version() {
  static std::string version = [] {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " (" + v->hash + ", CPU runtime " +
           std::to_string(v->cpu_runtime) + ")";
  }();
  return version.c_str();
}
