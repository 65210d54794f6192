# Triton python-backend model written by `dtfsal triton-repo --platform python`: runs the exported DTFSal
# ONNX file next to it (model.onnx) with ONNX Runtime's CPU provider. For servers without Triton's
# onnxruntime backend (e.g. the tritonserver bundled in the nvidia-pytriton wheel); with that backend,
# `--platform onnxruntime` serves the file directly.
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        threads = int(params.get("intra_op_threads", {}).get("string_value", "0"))
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                feeds = {}
                for name in self.inputs:
                    t = pb_utils.get_input_tensor_by_name(request, name)
                    if t is None:
                        raise ValueError(f"input {name} missing")
                    feeds[name] = t.as_numpy().astype(np.float32, copy=False)
                (sal,) = self.session.run(["sal"], feeds)
                out = pb_utils.Tensor("sal", np.ascontiguousarray(sal, dtype=np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            except Exception as e:  # one bad request must not take the model down
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"dtfsal: {e}")))
        return responses
