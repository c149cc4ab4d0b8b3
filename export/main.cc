// Minimal TensorFlow Lite Micro application for an edgessl int8 classifier.
// Load the model array, fill the int8 input from an RGB frame, invoke, print the top-1 class.
//
// Files from `edgessl export --format c`: edgessl_model.c / edgessl_model.h (model bytes, input
// shape, scale, zero point, class names, measured arena size).
#include <cstdint>
#include <cstdio>

#include "edgessl_model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
// The arena size edgessl measured in the TFLite Micro interpreter, plus a margin for optimised
// (CMSIS-NN) kernels whose scratch and persistent buffers differ from the reference kernels'. `edgessl budget`
// counts both.
constexpr int kArenaSize = EDGESSL_MODEL_ARENA_SIZE + EDGESSL_MODEL_ARENA_MARGIN;
alignas(16) uint8_t g_arena[kArenaSize];

// Replace with your camera driver: an RGB888 frame of the model's input size, row-major (NHWC).
extern "C" const uint8_t* camera_frame(void) __attribute__((weak));
const uint8_t* demo_frame() {
  static uint8_t frame[EDGESSL_MODEL_INPUT_HEIGHT * EDGESSL_MODEL_INPUT_WIDTH * 3];
  return camera_frame ? camera_frame() : frame;
}
}  // namespace

int main() {
  const tflite::Model* model = tflite::GetModel(g_edgessl_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("model schema %lu != runtime schema %d\n", (unsigned long)model->version(), TFLITE_SCHEMA_VERSION);
    return 1;
  }
  // Exactly the ops the TinyNeXt-T classifier uses (edgessl budget lists them per model).
  static tflite::MicroMutableOpResolver<16> resolver;
  resolver.AddAdd();
  resolver.AddBatchMatMul();
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddFullyConnected();
  resolver.AddLogistic();
  resolver.AddMean();
  resolver.AddMul();
  resolver.AddPad();
  resolver.AddReshape();
  resolver.AddSoftmax();
  resolver.AddSub();
  resolver.AddTranspose();
  resolver.AddQuantize();
  resolver.AddDequantize();

  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("AllocateTensors failed: raise the arena size\n");
    return 1;
  }
  printf("arena used: %u of %d bytes\n", (unsigned)interpreter.arena_used_bytes(), kArenaSize);

  TfLiteTensor* input = interpreter.input(0);
  const uint8_t* rgb = demo_frame();
  const int n = EDGESSL_MODEL_INPUT_HEIGHT * EDGESSL_MODEL_INPUT_WIDTH * EDGESSL_MODEL_INPUT_CHANNELS;
  for (int i = 0; i < n; ++i) {
    // q = round(pixel / scale) + zero_point; edgessl pins scale 1 and zero point -128.
    int q = (int)((float)rgb[i] / EDGESSL_MODEL_INPUT_SCALE + 0.5f) + EDGESSL_MODEL_INPUT_ZERO_POINT;
    input->data.int8[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
  }
  if (interpreter.Invoke() != kTfLiteOk) {
    printf("Invoke failed\n");
    return 1;
  }
  const TfLiteTensor* output = interpreter.output(0);
  int best = 0;
  for (int c = 1; c < EDGESSL_MODEL_NUM_CLASSES; ++c) {
    if (output->data.int8[c] > output->data.int8[best]) best = c;
  }
  printf("top-1: %s\n", g_edgessl_model_class_names[best]);
  return 0;
}
